"""Retroformer's retrospective model: a LoRA reflector trained by policy gradient.

Pipeline (one `train_from_config` job per backbone x domain):

1. Rollouts: Reflexion episodes on auxiliary (training) problems, disjoint from every eval
   set, with the *frozen* actor. At each reflection step the reflector samples
   `samples_per_reflection` reflections at `temperature` (one batched call); every sample
   gets its own actor retry + visible check (one batched call + one batched check), so each
   reflection has a reward of its own. The episode continues with sample 0 (on-policy).
2. Reward of a reflection = visible score of the retry that read it minus the visible score
   of the attempt it reflected on (`reflection_rewards`).
3. Update: REINFORCE with a leave-one-out per-prompt baseline (RLOO) on the LoRA parameters
   only, plus an exact full-vocabulary KL penalty to the frozen base model (the same network
   with the adapter disabled) on the reflection tokens (`pg_update`).
4. Repeat for `rounds` (collect with the current adapter -> update -> save); finally measure
   the mean reflection reward of the untrained base reflector and of the trained one on
   held-out training problems with the same seeds, and write the adapter (top level of the
   output directory), `training_log.json` and a `README.md` model card.

Why not TRL: its online trainers (GRPOTrainer, RLOOTrainer) own generation and call a reward
function on (prompt, completion). Our reward needs, per sampled reflection, an actor retry on
the serving engine plus a sandboxed visible check, batched across the whole rollout, with the
actor served by vLLM on GPU clusters; wrapping that in a reward callback would serialise it
and make TRL generate the reflections outside our engine/cache/seed contract. The update
itself is ~60 lines (`pg_update`) and unit-tested.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from parammem.memory.episodic import EpisodicMemory
from parammem.methods.core import (
    Call,
    Context,
    Episode,
    Settings,
    memory_block,
    parse_asserts,
    retry_prompt,
)
from parammem.methods.retroformer import Retroformer
from parammem.seeding import derive_seed
from parammem.tasks.base import Problem, Task

log = logging.getLogger(__name__)

POLICY = "retro_policy"  # peft name of the trainable adapter inside the reflector model
HELDOUT_SALT = "round1"  # the seeds of round 1, reused for the trained held-out rollouts

# Knobs of the config's `retroformer:` block (workflow/schemas/config.schema.yaml).
DEFAULTS: dict[str, Any] = {
    "reflector_backbone": None,
    "rollout_problems": 256,
    "heldout_problems": None,  # None = max(1, rollout_problems // 4)
    "rollout_iters": 3,
    "samples_per_reflection": 4,
    "temperature": 1.0,
    "rounds": 1,
    "lr": 1.0e-5,
    "epochs": 1,
    "batch_size": 8,
    "micro_batch_size": 2,
    "r": 16,
    "alpha": 32,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "kl_coef": 0.05,
    "max_grad_norm": 1.0,
    "max_tokens": 256,
    "gpu_memory_utilization": 0.45,
    "visible_tests": "reference",
}


def retro_options(config: dict[str, Any]) -> dict[str, Any]:
    opts = {**DEFAULTS, **(config.get("retroformer") or {})}
    if opts["heldout_problems"] is None:
        opts["heldout_problems"] = max(1, int(opts["rollout_problems"]) // 4)
    return opts


# -- rewards ---------------------------------------------------------------------------------
_KEYS = ("method", "dataset", "backbone", "stage", "problem_id")


def reflection_rewards(rows: pd.DataFrame | Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per reflect call of a trajectory table (`Context.rows`), index kept, with
    `score_before` (visible score of the adopted attempt of iteration k-1, i.e. its solve row
    with candidate 0), `score_after` (visible score of the iteration-k solve row with the
    same candidate as the reflection: the retry that read it) and `reward` = after - before.
    A reflection whose retry or predecessor has no score gets NaN."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if df.empty or "role" not in df:
        return pd.DataFrame(columns=[*df.columns, "score_before", "score_after", "reward"])
    keys = [k for k in _KEYS if k in df.columns]
    cand = df["candidate"] if "candidate" in df else pd.Series(0, index=df.index)
    df = df.assign(candidate=cand.fillna(0).astype(int))
    failed = df["error"].notna() if "error" in df else pd.Series(False, index=df.index)
    solve = df[df["role"] == "solve"]
    # a call the engine could not answer has no score: its reflection gets no reward
    score = pd.to_numeric(solve["visible_score"], errors="coerce").mask(failed[solve.index])
    after = (
        solve.assign(score_after=score)
        .drop_duplicates([*keys, "iteration", "candidate"], keep="last")
        .loc[:, [*keys, "iteration", "candidate", "score_after"]]
    )
    before = (
        solve.assign(score_before=score)[solve["candidate"] == 0]
        .drop_duplicates([*keys, "iteration"], keep="last")
        .assign(iteration=lambda d: d["iteration"] + 1)
        .loc[:, [*keys, "iteration", "score_before"]]
    )
    refl = df[df["role"] == "reflect"]
    out = (
        refl.reset_index()
        .merge(before, on=[*keys, "iteration"], how="left")
        .merge(after, on=[*keys, "iteration", "candidate"], how="left")
        .set_index("index")
    )
    out.index.name = refl.index.name
    out["reward"] = (out["score_after"] - out["score_before"]).mask(failed[out.index])
    return out


def rloo_advantages(df: pd.DataFrame, reward: str = "reward") -> pd.Series:
    """Leave-one-out baseline per prompt group (same problem, iteration, cell): advantage =
    reward - mean reward of the group's *other* samples; 0 for a group of one."""
    keys = [k for k in (*_KEYS, "iteration") if k in df.columns]
    r = df[reward].astype(float)
    grouped = r.groupby([df[k] for k in keys], dropna=False)
    total, count = grouped.transform("sum"), grouped.transform("count")
    adv = r - (total - r) / (count - 1).where(count > 1)
    return adv.where(count > 1, 0.0).fillna(0.0)


# -- rollouts ----------------------------------------------------------------------------------
class _RolloutContext(Context):
    """A Context whose reflection sampling seeds also depend on `salt` (the round), so each
    round draws fresh reflections while the greedy actor calls replay from the cache."""

    def __init__(self, *args, salt: str = "", **kw):
        super().__init__(*args, **kw)
        self.salt = salt

    def seed(self, episode: Episode, iteration: int, role: str, candidate: int = 0) -> int:
        s = super().seed(episode, iteration, role, candidate)
        return derive_seed(s, self.salt) if role == "reflect" and self.salt else s


class SampledRetroformer(Retroformer):
    """Retroformer's loop for training data: `samples` reflections per reflection step, each
    with its own actor retry and visible check (batched); the episode goes on with sample 0."""

    def __init__(self, samples: int = 1, temperature: float | None = None, max_tokens=None):
        super().__init__(allow_base=True)
        self.samples = max(1, int(samples))
        self.temperature, self.max_tokens = temperature, max_tokens

    def step(self, ctx: Context, episodes: list[Episode], iteration: int) -> None:
        calls = []
        for e in episodes:
            for j in range(self.samples):
                call = self.reflect_call(ctx, e, iteration)
                call.candidate = j
                if self.temperature is not None:
                    call.temperature = self.temperature
                if self.max_tokens is not None:
                    call.max_tokens = self.max_tokens
                calls.append(call)
        retries, reflections = [], []
        for call, (comp, row) in zip(calls, ctx.generate(calls), strict=True):
            row["reflection"] = comp.text
            e = call.episode
            view = copy.copy(e)  # the episode as the retry of this sample sees it
            view.memory = EpisodicMemory(list(e.memory.trials), list(e.memory.reflections))
            view.memory.add_reflections([comp.text])
            reflections.append(comp.text)
            retries.append(
                Call(
                    e,
                    "solve",
                    retry_prompt(ctx, e, memory_block(view)),
                    ctx.settings.temperatures["solve"],
                    ctx.settings.max_tokens,
                    iteration,
                    candidate=call.candidate,
                )
            )
        results = ctx.generate(retries)
        texts = [comp.text for comp, _ in results]
        attempts, feedbacks = ctx.check(
            [c.episode for c in retries], texts, [row for _, row in results]
        )
        for call, refl, text, attempt, fb in zip(
            retries, reflections, texts, attempts, feedbacks, strict=True
        ):
            if call.candidate == 0:  # the episode goes on with sample 0 (on-policy)
                call.episode.memory.add_reflections([refl])
                ctx.adopt(call.episode, text, attempt, fb)


def reference_tests(problem: Problem) -> list[str] | None:
    """A code problem's own reference asserts (training problems have them); None else."""
    if problem.domain != "code":
        return None
    tests = problem.data.get("test_list") or parse_asserts(problem.data.get("test") or "")
    return list(tests) or None


def collect_rollouts(
    task: Task,
    problems: Sequence[Problem],
    actor_backend,
    reflect_backend,
    adapter: str | None,
    settings: Settings,
    cell: dict[str, str],
    *,
    samples: int = 1,
    temperature: float | None = None,
    max_tokens: int | None = None,
    salt: str = "",
    visible_tests: str = "task",
) -> pd.DataFrame:
    """Reflexion episodes with the frozen actor whose reflections come from the reflector
    (`adapter` None = the untrained base reflector). Returns the trajectory table (one row per
    model call, `Context.rows` columns) with `score_before`, `score_after` and `reward` filled
    on the reflect rows, and the hidden grade of every adopted attempt.

    `visible_tests`: "task" = the task's own visible protocol (MBPP: the agent writes its
    tests); "reference" = code problems are checked on their reference asserts, so the
    reward counts real test outcomes (training problems only: it shows every assert)."""
    if visible_tests not in ("task", "reference"):
        raise ValueError(f"visible_tests must be 'task' or 'reference', not {visible_tests!r}")
    from parammem.methods.runner import run_loop

    method = SampledRetroformer(samples, temperature, max_tokens)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(problems), settings.chunk_size):
        ctx = _RolloutContext(
            task,
            actor_backend,
            settings,
            cell,
            reflect_backend=reflect_backend,
            reflect_adapter=adapter,
            salt=salt,
        )
        episodes = [Episode(p) for p in problems[start : start + settings.chunk_size]]
        if visible_tests == "reference":
            for e in episodes:
                e.visible_tests = reference_tests(e.problem)
        run_loop(method, ctx, episodes, settings.max_iters)
        for r in ctx.rows:
            if r["role"] == "solve" and r.get("attempt") is not None:
                r["hidden_passed"] = ctx._hidden.get((r["problem_id"], r["attempt"]))
        rows += ctx.rows
    traj = pd.DataFrame(rows)
    rewards = reflection_rewards(traj)
    for col in ("score_before", "score_after", "reward"):
        traj[col] = rewards[col] if len(rewards) else float("nan")
    return traj


def require_answers(traj: pd.DataFrame, what: str, max_failed: float = 0.5) -> pd.DataFrame:
    """Stop the job when more than `max_failed` of a rollout's model calls failed: that is a
    broken engine or adapter, not a reflector to learn from. Fewer failures stay recorded
    (`error`) and get no reward."""
    if not len(traj) or "error" not in traj:
        return traj
    failed = traj["error"].notna()
    if failed.mean() > max_failed:
        raise RuntimeError(
            f"{what}: {int(failed.sum())} of {len(traj)} model calls failed; first: "
            f"{traj.loc[failed, 'error'].iloc[0]}"
        )
    return traj


def rollout_summary(traj: pd.DataFrame) -> dict[str, Any]:
    """Mean reflection reward and friends over a rollout table (reflect rows with a reward)."""
    refl = traj[(traj["role"] == "reflect")] if len(traj) else traj
    scored = refl[refl["reward"].notna()] if len(refl) else refl
    out: dict[str, Any] = {
        "problems": int(traj["problem_id"].nunique()) if len(traj) else 0,
        "reflections": int(len(scored)),
        "mean_reward": float(scored["reward"].mean()) if len(scored) else None,
        "improved": float((scored["reward"] > 0).mean()) if len(scored) else None,
        "worse": float((scored["reward"] < 0).mean()) if len(scored) else None,
    }
    first = scored[scored["iteration"] == scored["iteration"].min()] if len(scored) else scored
    out["mean_reward_first_reflection"] = float(first["reward"].mean()) if len(first) else None
    out["failed_calls"] = int(traj["error"].notna().sum()) if "error" in traj else 0
    solve = traj[(traj["role"] == "solve") & (traj["candidate"] == 0)] if len(traj) else traj
    if len(solve) and solve["hidden_passed"].notna().any():
        last = solve.sort_values("iteration").groupby("problem_id").tail(1)
        out["hidden_solved"] = float(last["hidden_passed"].fillna(False).astype(bool).mean())
    return out


def paired_heldout(base: pd.DataFrame, trained: pd.DataFrame) -> dict[str, Any]:
    """Trained minus base reflection reward on the held-out problems, paired by (problem,
    iteration, sample): both runs use the same seeds and the same greedy actor, so a pair
    differs only in the reflector. The 95% CI is a bootstrap over problems (a problem's
    samples are not independent of each other)."""
    from parammem.analysis.stats import bootstrap_ci, detectable_difference

    keys = ["problem_id", "iteration", "candidate"]

    def rewards(traj: pd.DataFrame) -> pd.DataFrame:
        if not len(traj):
            return pd.DataFrame(columns=[*keys, "reward"])
        refl = traj[(traj["role"] == "reflect") & traj["reward"].notna()]
        return refl.loc[:, [*keys, "reward"]]

    pairs = rewards(base).merge(rewards(trained), on=keys, suffixes=("_base", "_trained"))
    diff = pairs["reward_trained"] - pairs["reward_base"]
    per_problem = diff.groupby(pairs["problem_id"]).mean()
    n = len(per_problem)
    lo, hi = bootstrap_ci(per_problem.to_numpy()) if n else (None, None)
    return {
        "pairs": int(len(pairs)),
        "problems": int(n),
        "mean_difference": float(per_problem.mean()) if n else None,
        "ci95": [lo, hi],
        "per_problem_sd": float(per_problem.std()) if n > 1 else None,
        "detectable_effect": detectable_difference(per_problem.to_numpy()),
        "trained_better": int((diff > 0).sum()),
        "base_better": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),
    }


# -- the trainable reflector ---------------------------------------------------------------
def _lora_targets(model, target_modules: Sequence[str]) -> list[tuple[str, int, int]]:
    """(module name, in_features, out_features) of the linear layers a LoRA on
    `target_modules` adapts (works on a plain or an already peft-wrapped model)."""
    out = []
    for name, module in model.named_modules():
        if ".base_layer" in name or "lora_" in name or name.startswith("base_model.model."):
            continue
        if name.rsplit(".", 1)[-1] in target_modules and hasattr(module, "in_features"):
            out.append((name, int(module.in_features), int(module.out_features)))
    return out


def write_init_adapter(
    model,
    out_dir: str | Path,
    *,
    r: int,
    alpha: float,
    target_modules: Sequence[str],
    base_model_path: str,
    seed: int = 0,
) -> Path:
    """Write a freshly initialised LoRA (A Kaiming-uniform as peft does, B = 0, so it equals
    the base model) for `model` without modifying `model`."""
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    targets = _lora_targets(base, target_modules)
    if not targets:
        raise ValueError(f"no module of the reflector matches target_modules {target_modules}")
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, fan_in, fan_out in targets:
        a = torch.empty(r, fan_in)
        torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=gen)
        tensors[f"base_model.model.{name}.lora_A.weight"] = a
        tensors[f"base_model.model.{name}.lora_B.weight"] = torch.zeros(fan_out, r)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = LoraConfig(
        r=int(r),
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=str(base_model_path),
    )
    cfg.save_pretrained(str(out))
    save_file(tensors, str(out / "adapter_model.safetensors"))
    return out


@dataclass
class ReflectorPolicy:
    """The peft model that holds the trainable adapter `POLICY`, and its tokenizer.
    `shared` = it is the reflector backend's own loaded model (no second copy)."""

    model: Any
    tokenizer: Any
    base_model_path: str
    shared: bool

    @classmethod
    def attach(
        cls,
        reflect_backend,
        model_path: str,
        init_dir: str | Path,
        opts: dict[str, Any],
        *,
        seed: int = 0,
    ) -> ReflectorPolicy:
        """On a white-box (hf) reflector backend, add the trainable adapter to the model it
        serves; otherwise load the reflector once with transformers + peft."""
        import torch
        from peft import PeftModel

        lora = dict(r=opts["r"], alpha=opts["alpha"], target_modules=opts["target_modules"])
        if getattr(reflect_backend, "supports_white_box", False):
            try:
                write_init_adapter(
                    reflect_backend.model, init_dir, base_model_path=model_path, seed=seed, **lora
                )
                if not isinstance(reflect_backend.model, PeftModel):
                    # let the engine wrap its model in peft by serving the init adapter once
                    # (bypassing the response cache, which would answer without loading it)
                    from parammem.backends.base import GenerationRequest

                    engine = getattr(reflect_backend, "inner", reflect_backend)
                    probe = GenerationRequest.chat(None, "ok", max_tokens=1, adapter=str(init_dir))
                    err = engine.generate([probe])[0].error
                    if err:
                        raise RuntimeError(err)
                model = reflect_backend.model
                if not isinstance(model, PeftModel):
                    raise RuntimeError("the backend did not expose a peft model")
                model.load_adapter(str(init_dir), adapter_name=POLICY, is_trainable=True)
                log.info("retroformer: training the adapter on the reflector backend's model")
                return cls(model, reflect_backend.tokenizer, str(model_path), True)
            except Exception as err:  # noqa: BLE001 - fall back to a model of our own
                log.warning(
                    "retroformer: cannot train on the backend's model (%s); loading "
                    "the reflector a second time",
                    err,
                )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from parammem.backends.hf import cpu_has_fast_bf16

        cuda = torch.cuda.is_available()
        dtype = torch.bfloat16 if cuda or cpu_has_fast_bf16() else torch.float32
        base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        base = base.to("cuda" if cuda else "cpu").eval()
        write_init_adapter(base, init_dir, base_model_path=model_path, seed=seed, **lora)
        model = PeftModel.from_pretrained(
            base, str(init_dir), adapter_name=POLICY, is_trainable=True
        )
        model.eval()
        return cls(model, AutoTokenizer.from_pretrained(model_path), str(model_path), False)

    def save(self, out_dir: str | Path) -> str:
        return save_adapter(
            self.model, out_dir, adapter_name=POLICY, base_model_path=self.base_model_path
        )


def save_adapter(
    model, out_dir: str | Path, *, adapter_name: str = POLICY, base_model_path: str | None = None
) -> str:
    """adapter_config.json + adapter_model.safetensors of `adapter_name`, at the top level
    of `out_dir` (peft's save_pretrained nests non-default adapters in a subfolder)."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(model, adapter_name=adapter_name)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    cfg = copy.deepcopy(model.peft_config[adapter_name])
    cfg.inference_mode = True
    if base_model_path:
        cfg.base_model_name_or_path = str(base_model_path)
    cfg.save_pretrained(str(out))
    save_file(tensors, str(out / "adapter_model.safetensors"))
    return str(out)


def policy_parameters(model, adapter_name: str = POLICY) -> list:
    """Make `adapter_name` active and the only trainable tensors; return them."""
    model.set_adapter(adapter_name)
    params = []
    for name, p in model.named_parameters():
        mine = "lora_" in name and f".{adapter_name}." in name
        p.requires_grad_(mine)
        if mine:
            params.append(p)
    if not params:
        raise ValueError(f"model has no LoRA parameters for adapter {adapter_name!r}")
    return params


# -- the policy-gradient step ------------------------------------------------------------------
def _messages(prompt) -> tuple[tuple[str, str], ...]:
    msgs = json.loads(prompt) if isinstance(prompt, str) else prompt
    return tuple(
        (str(m[0]), str(m[1])) if not isinstance(m, dict) else (m["role"], m["content"])
        for m in msgs
    )


def _encode(tokenizer, item: dict[str, Any]) -> tuple[list[int], list[int]]:
    from parammem.backends.base import GenerationRequest
    from parammem.backends.common import render_chat

    prompt = render_chat(tokenizer, GenerationRequest(messages=_messages(item["prompt"])))
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    y_ids = tokenizer(item["response"], add_special_tokens=False)["input_ids"]
    if item.get("ended", True) and tokenizer.eos_token_id is not None:
        y_ids = y_ids + [tokenizer.eos_token_id]
    return p_ids, y_ids


def pg_update(
    model,
    tokenizer,
    batch: pd.DataFrame | Sequence[dict[str, Any]],
    *,
    lr: float = 1e-5,
    kl_coef: float = 0.05,
    optimizer=None,
    adapter_name: str = POLICY,
    max_grad_norm: float | None = 1.0,
    micro_batch_size: int = 2,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """One REINFORCE step on the LoRA `adapter_name` of the peft `model`.

    `batch` rows: `prompt` (the reflect request's messages, JSON or a list of (role, text)),
    `response` (the sampled reflection), `advantage` (reward minus the per-prompt baseline),
    optional `reward` (logged) and `ended` (the sample stopped at EOS; then EOS is scored).

    loss = mean_i[ -A_i * sum_t log pi(y_it | x_i, y_i<t) + kl_coef * sum_t KL_t ], KL_t the
    exact KL(pi || base) over the vocabulary at reflection token t, base = the same model
    with the adapter disabled; pi = softmax(logits / temperature) (the sampling policy).
    Returns mean reward / advantage, KL per token and per sequence, gradient norm (before
    clipping) and the L2 norm of the parameter update."""
    import torch

    t0 = time.perf_counter()
    items = batch.to_dict("records") if isinstance(batch, pd.DataFrame) else list(batch)
    if not items:
        raise ValueError("pg_update got an empty batch")
    params = policy_parameters(model, adapter_name)
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    before = [p.detach().clone() for p in params]
    device = params[0].device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [_encode(tokenizer, it) for it in items]
    n = len(items)
    optimizer.zero_grad(set_to_none=True)
    tot = {"loss": 0.0, "pg_loss": 0.0, "kl_seq": 0.0, "kl_tok_sum": 0.0, "tokens": 0, "logp": 0.0}
    for s in range(0, n, max(1, micro_batch_size)):
        enc = encoded[s : s + micro_batch_size]
        adv = torch.tensor(
            [float(it["advantage"]) for it in items[s : s + micro_batch_size]], device=device
        )
        width = max(len(p) + len(y) for p, y in enc)
        r_max = max(len(y) for _, y in enc)
        ids = torch.full((len(enc), width), pad, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        tmask = torch.zeros((len(enc), r_max), dtype=torch.bool)
        for j, (p, y) in enumerate(enc):  # left-pad: every sequence ends at column width-1
            seq = p + y
            ids[j, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[j, width - len(seq) :] = 1
            tmask[j, r_max - len(y) :] = True
        ids, mask, tmask = ids.to(device), mask.to(device), tmask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        targets = ids[:, width - r_max :]
        keep = r_max + 1

        def logprobs(out):
            logits = out.logits[:, :-1, :].float() / temperature  # position t predicts t+1
            return torch.log_softmax(logits, dim=-1)

        with torch.no_grad(), model.disable_adapter():
            ref = logprobs(
                model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep)
            )
        pol = logprobs(
            model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep)
        )
        tok_logp = pol.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * tmask
        kl_tok = (pol.exp() * (pol - ref)).sum(-1) * tmask
        seq_logp, seq_kl = tok_logp.sum(-1), kl_tok.sum(-1)
        pg = -(adv * seq_logp)
        loss = (pg + kl_coef * seq_kl).sum() / n
        loss.backward()
        tot["loss"] += float(loss.detach())
        tot["pg_loss"] += float(pg.detach().sum()) / n
        tot["kl_seq"] += float(seq_kl.detach().sum()) / n
        tot["kl_tok_sum"] += float(kl_tok.detach().sum())
        tot["tokens"] += int(tmask.sum())
        tot["logp"] += float(seq_logp.detach().sum()) / n
        del pol, ref, kl_tok, tok_logp, loss
    grads = [p.grad for p in params if p.grad is not None]
    grad_norm = (
        float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        if grads
        else 0.0
    )
    if max_grad_norm and grads:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        update = math.sqrt(
            sum(float(((p - b) ** 2).sum()) for p, b in zip(params, before, strict=True))
        )
        pnorm = math.sqrt(sum(float((p**2).sum()) for p in params))
    rewards = [float(it["reward"]) for it in items if it.get("reward") is not None]
    advs = [float(it["advantage"]) for it in items]
    return {
        "samples": n,
        "tokens": tot["tokens"],
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "mean_advantage": sum(advs) / n,
        "mean_abs_advantage": sum(abs(a) for a in advs) / n,
        "loss": tot["loss"],
        "pg_loss": tot["pg_loss"],
        "mean_logp": tot["logp"],
        "kl": tot["kl_tok_sum"] / max(1, tot["tokens"]),
        "kl_seq": tot["kl_seq"],
        "grad_norm": grad_norm,
        "update_norm": update,
        "param_norm": pnorm,
        "lr": float(optimizer.param_groups[0]["lr"]),
        "seconds": time.perf_counter() - t0,
    }


# -- the job -----------------------------------------------------------------------------------
def make_batches(samples: pd.DataFrame, batch_size: int, epochs: float, seed: int) -> list:
    """Minibatches of whole prompt groups (a group's samples share their baseline), about
    `batch_size` samples each, shuffled (seeded); `epochs` passes (fractions allowed)."""
    keys = [k for k in (*_KEYS, "iteration") if k in samples.columns]
    groups = [g for _, g in samples.groupby(keys, sort=True, dropna=False)]
    batches: list[pd.DataFrame] = []
    rng = random.Random(seed)
    for _ in range(max(1, math.ceil(epochs))):
        order = list(range(len(groups)))
        rng.shuffle(order)
        cur: list[pd.DataFrame] = []
        for i in order:
            cur.append(groups[i])
            if sum(len(g) for g in cur) >= batch_size:
                batches.append(pd.concat(cur))
                cur = []
        if cur:
            batches.append(pd.concat(cur))
    per_epoch = len(batches) / max(1, math.ceil(epochs))
    return batches[: max(1, round(per_epoch * epochs))] if batches else []


def training_samples(traj: pd.DataFrame, *, skip_zero_advantage: bool = True) -> pd.DataFrame:
    """Reflect rows with a reward -> (prompt, response, reward, advantage, ended)."""
    refl = traj[(traj["role"] == "reflect") & traj["reward"].notna()].copy()
    if refl.empty:
        return refl
    refl["advantage"] = rloo_advantages(refl)
    if "error" in refl:
        refl = refl[refl["error"].isna()]
    ended = refl["finish_reason"] if "finish_reason" in refl else pd.Series("stop", refl.index)
    refl["ended"] = ended.fillna("stop") != "length"
    if skip_zero_advantage:  # their policy-gradient term is exactly zero
        refl = refl[refl["advantage"].abs() > 1e-9]
    return refl


def _check_against_eval(config: dict[str, Any], dataset: str, problems: list[Problem]) -> None:
    """The rollout problems must not be eval problems of any dataset of the same domain."""
    from parammem.config import DATASET_DOMAIN, cells
    from parammem.methods.runner import eval_problems, task_for
    from parammem.tasks.base import check_disjoint

    domain = DATASET_DOMAIN.get(dataset)
    evals = sorted({d for d, _, _ in cells(config) if DATASET_DOMAIN.get(d) == domain})
    for d in evals:
        check_disjoint(eval_problems(config, task_for(config, d), d), problems)


def train_from_config(
    config: dict[str, Any],
    backbone: str,
    dataset: str,
    out_dir: str | Path,
    *,
    task: Task | None = None,
    actor_backend=None,
    reflect_backend=None,
) -> dict[str, Any]:
    """The `train_retroformer` job: rollouts -> REINFORCE -> adapter, for one backbone and
    one training dataset. Writes the adapter at the top level of `out_dir` plus
    `training_log.json`, `README.md`, and under `train/` the rollouts and round adapters.
    `task` / backends default to the config's (tests inject fakes)."""
    import torch

    from parammem.config import retro_reflector_for
    from parammem.models import resolve_model

    t_start = time.perf_counter()
    opts = retro_options(config)
    seed = int(config.get("seed", 0))
    torch.manual_seed(seed)
    if not torch.cuda.is_available():
        torch.set_flush_denormal(True)  # CPU: denormals slow LoRA training ~5x
    out = Path(out_dir)
    work = out / "train"
    work.mkdir(parents=True, exist_ok=True)

    if task is None:
        from parammem.methods.runner import task_for

        task = task_for(config, dataset)
    n_train, n_held = int(opts["rollout_problems"]), int(opts["heldout_problems"])
    pool = task.aux_problems(limit=n_train + n_held)
    if len(pool) < 2:
        raise ValueError(f"{dataset}: only {len(pool)} auxiliary problems; need >= 2")
    if config.get("backbones") and config.get("datasets"):
        _check_against_eval(config, dataset, pool)
    order = list(pool)
    random.Random(seed).shuffle(order)
    n_held = min(n_held, max(1, len(order) // 4)) if len(order) < n_train + n_held else n_held
    heldout, train = order[:n_held], order[n_held:][:n_train]
    log.info(
        "retroformer %s/%s: %d train, %d held-out problems",
        backbone,
        dataset,
        len(train),
        len(heldout),
    )

    ralias = retro_reflector_for(config, backbone)
    if config.get("engine") == "vllm" and opts.get("gpu_memory_utilization"):
        # vLLM serves the rollouts; the rest of the GPU holds the training copy of the
        # reflector (vLLM exposes no weights to train)
        engine_options = dict(config.get("engine_options") or {})
        engine_options["gpu_memory_utilization"] = float(opts["gpu_memory_utilization"])
        config = {**config, "engine_options": engine_options}
    if actor_backend is None:
        from parammem.engine import open_backend

        actor_backend = open_backend(config, backbone)
    if reflect_backend is None:
        if ralias == backbone:
            reflect_backend = actor_backend
        else:
            from parammem.engine import open_backend

            reflect_backend = open_backend(config, ralias)
    model_path = str(resolve_model(config["backbones"][ralias]["model"]))
    policy = ReflectorPolicy.attach(
        reflect_backend, model_path, work / "adapter_init", opts, seed=seed
    )

    settings = dataclasses.replace(
        Settings.from_config(config),
        max_iters=int(opts["rollout_iters"]),
        reflect_max_tokens=int(opts["max_tokens"]),
    )
    samples, temperature = int(opts["samples_per_reflection"]), float(opts["temperature"])
    rollout = dict(samples=samples, temperature=temperature, max_tokens=int(opts["max_tokens"]))

    cell = {"method": "retroformer_train", "dataset": dataset, "backbone": backbone}

    def rollouts(problems, adapter, salt):
        return require_answers(
            collect_rollouts(
                task,
                problems,
                actor_backend,
                reflect_backend,
                adapter,
                settings,
                cell,
                salt=salt,
                visible_tests=opts["visible_tests"],
                **rollout,
            ),
            f"rollout {salt} ({'base' if adapter is None else adapter})",
        )

    # Round 1 samples from the untrained reflector (the init adapter has B = 0: it *is* the
    # base model), so it runs on the train and held-out problems in one batched rollout: its
    # held-out part is the "before" measurement. The trained reflector later meets the
    # held-out problems with the same seeds (salt) and the cached greedy first attempts.
    held_ids = {p.task_id for p in heldout}
    params = policy_parameters(policy.model)
    optimizer = torch.optim.AdamW(params, lr=float(opts["lr"]), weight_decay=0.0)
    adapter: str | None = None
    rounds, updates = [], []
    for k in range(1, int(opts["rounds"]) + 1):
        t0 = time.perf_counter()
        if k == 1:
            both = rollouts(train + heldout, None, HELDOUT_SALT)
            is_held = both["problem_id"].isin(held_ids)
            held_base, traj = both[is_held], both[~is_held]
            held_base.to_parquet(work / "heldout_base.parquet")
            base_summary = rollout_summary(held_base)
            log.info("held-out, base reflector: %s", base_summary)
        else:
            traj = rollouts(train, adapter, f"round{k}")
        traj.to_parquet(work / f"rollouts_round{k}.parquet")
        summary = {"round": k, "adapter": adapter or "base", **rollout_summary(traj)}
        data = training_samples(traj)
        summary["samples_with_advantage"] = int(len(data))
        t1 = time.perf_counter()
        batches = make_batches(data, int(opts["batch_size"]), float(opts["epochs"]), seed + k)
        for b in batches:
            stats = pg_update(
                policy.model,
                policy.tokenizer,
                b,
                optimizer=optimizer,
                kl_coef=float(opts["kl_coef"]),
                max_grad_norm=opts["max_grad_norm"],
                micro_batch_size=int(opts["micro_batch_size"]),
                temperature=temperature,
            )
            stats = {"update": len(updates) + 1, "round": k, **stats}
            updates.append(stats)
            log.info(
                "update %d: reward %.3f adv %.3f kl %.4f |grad| %.3g |dW| %.3g (%.0fs)",
                stats["update"],
                stats["mean_reward"] or 0.0,
                stats["mean_abs_advantage"],
                stats["kl"],
                stats["grad_norm"],
                stats["update_norm"],
                stats["seconds"],
            )
        if not batches:
            log.warning("round %d: no reflection had a non-zero advantage; no update", k)
        if k < int(opts["rounds"]):
            adapter = policy.save(work / f"adapter_round{k}")
        summary.update(
            updates=len(batches), rollout_seconds=t1 - t0, update_seconds=time.perf_counter() - t1
        )
        rounds.append(summary)
        log.info("round %d: %s", k, {x: summary[x] for x in summary if x != "adapter"})

    final = policy.save(out)
    held_trained = rollouts(heldout, final, HELDOUT_SALT)
    held_trained.to_parquet(work / "heldout_trained.parquet")
    trained_summary = rollout_summary(held_trained)
    log.info("held-out, trained reflector: %s", trained_summary)

    result = {
        "backbone": backbone,
        "reflector_backbone": ralias,
        "reflector_model": model_path,
        "dataset": dataset,
        "algorithm": "REINFORCE, leave-one-out per-prompt baseline, exact KL to the base model",
        "options": {k: opts[k] for k in DEFAULTS},
        "seed": seed,
        "train_problems": [p.task_id for p in train],
        "heldout_problems": [p.task_id for p in heldout],
        "shared_model": policy.shared,
        "rounds": rounds,
        "updates": updates,
        "heldout": {
            "base": base_summary,
            "trained": trained_summary,
            "paired": paired_heldout(held_base, held_trained),
        },
        "seconds": time.perf_counter() - t_start,
    }
    (out / "training_log.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "README.md").write_text(model_card(result))
    return {
        "adapter": str(out),
        "updates": len(updates),
        "heldout_reward_base": base_summary["mean_reward"],
        "heldout_reward_trained": trained_summary["mean_reward"],
        "heldout_paired": result["heldout"]["paired"],
        "seconds": result["seconds"],
    }


def model_card(result: dict[str, Any]) -> str:
    o, hb, ht = result["options"], result["heldout"]["base"], result["heldout"]["trained"]

    def f(x):
        return "n/a" if x is None else f"{x:+.4f}" if isinstance(x, float) else str(x)

    curve = "\n".join(
        f"| {r['round']} | {r['reflections']} | {f(r['mean_reward'])} | "
        f"{r['samples_with_advantage']} | {r['updates']} |"
        for r in result["rounds"]
    )
    ups = (
        "\n".join(
            f"| {u['update']} | {u['samples']} | {f(u['mean_reward'])} | {u['kl']:.5f} | "
            f"{u['grad_norm']:.4g} | {u['update_norm']:.4g} |"
            for u in result["updates"]
        )
        or "| - | no update (no reflection had a non-zero advantage) | | | | |"
    )
    held_rows = "\n".join(
        f"| {name} | {h['reflections']} | {f(h['mean_reward'])} | {f(h['improved'])} | "
        f"{f(h['worse'])} | {f(h['mean_reward_first_reflection'])} |"
        for name, h in (("base (untrained)", hb), ("trained", ht))
    )
    n_held = len(result["heldout_problems"])
    pd_ = result["heldout"].get("paired") or {}
    lo, hi = pd_.get("ci95") or (None, None)
    sd, mde = pd_.get("per_problem_sd"), pd_.get("detectable_effect")
    paired = (
        f"Paired by (problem, iteration, sample): trained - base = "
        f"{f(pd_.get('mean_difference'))} (95% bootstrap CI over problems {f(lo)} .. {f(hi)}; "
        f"{pd_.get('pairs', 0)} pairs on {pd_.get('problems', 0)} problems: trained better in "
        f"{pd_.get('trained_better', 0)}, base better in {pd_.get('base_better', 0)}, "
        f"{pd_.get('ties', 0)} ties). Per-problem SD {'n/a' if sd is None else f'{sd:.4f}'}: "
        f"this many problems detect a difference of {'n/a' if mde is None else f'{mde:.4f}'} "
        "or more with 80% power."
    )
    return f"""# Retroformer retrospective LoRA ({result["backbone"]}, {result["dataset"]})

LoRA (r={o["r"]}, alpha={o["alpha"]}, {", ".join(o["target_modules"])}) on
`{result["reflector_model"]}` (alias `{result["reflector_backbone"]}`), the reflector of the
Retroformer method for agent backbone `{result["backbone"]}`. Load it as a per-request LoRA
adapter (this directory). Written by `parammem.training.retroformer`.

## Training
{result["algorithm"]}; lr {o["lr"]}, kl_coef {o["kl_coef"]}, batch {o["batch_size"]}
reflections, {o["rounds"]} round(s) x {o["epochs"]} epoch(s).
Rollouts: Reflexion episodes of {o["rollout_iters"]} iterations with the frozen actor on
{len(result["train_problems"])} auxiliary `{result["dataset"]}` problems (disjoint from the
eval sets), {o["samples_per_reflection"]} reflections sampled per step at temperature
{o["temperature"]}, max {o["max_tokens"]} tokens. Reward of a reflection = visible score of the
retry that read it - visible score of the attempt it reflected on.

| round | reflections | mean reward | samples with advantage | updates |
|---|---|---|---|---|
{curve}

| update | samples | mean reward | KL/token | grad norm | update L2 |
|---|---|---|---|---|---|
{ups}

## Held-out reward ({n_held} training-split problems not used for updates, same seeds)
| reflector | reflections | mean reward | improved | worse | first reflection |
|---|---|---|---|---|---|
{held_rows}

{paired}

Wall time {result["seconds"]:.0f} s.
"""
