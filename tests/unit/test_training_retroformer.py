"""Retroformer training: reflection rewards, the per-prompt baseline, the REINFORCE step on a
LoRA, and the routing of reflections through the reflector's adapter."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from parammem.backends.scripted import ScriptedBackend
from parammem.methods.core import Context, Episode, Settings
from parammem.methods.retroformer import Retroformer
from parammem.methods.runner import run_loop
from parammem.training.retroformer import (
    POLICY,
    collect_rollouts,
    make_batches,
    paired_heldout,
    pg_update,
    policy_parameters,
    reflection_rewards,
    require_answers,
    rloo_advantages,
    rollout_summary,
    training_samples,
    write_init_adapter,
)

from .fakes import AnswerKeyTask

CELL = {"method": "retroformer", "dataset": "fake", "backbone": "b"}


def user_text(req) -> str:
    return req.messages[-1][1]


def is_reflect(req) -> bool:
    return "identify the most likely mistake" in user_text(req)


def qid(req) -> str:
    return user_text(req).split("question ")[1].split()[0].strip(".")


# -- rewards -----------------------------------------------------------------------------------
def _row(pid, it, role, score=None, candidate=0):
    return {
        "problem_id": pid,
        "iteration": it,
        "role": role,
        "candidate": candidate,
        "visible_score": score,
        "response": f"{role}-{pid}-{it}-{candidate}",
    }


def test_reflection_rewards_improved_unchanged_worse():
    rows = [
        _row("up", 1, "solve", 0.25),
        _row("up", 2, "reflect"),
        _row("up", 2, "solve", 1.0),
        _row("same", 1, "solve", 0.5),
        _row("same", 2, "reflect"),
        _row("same", 2, "solve", 0.5),
        _row("down", 1, "solve", 0.5),
        _row("down", 2, "reflect"),
        _row("down", 2, "solve", 0.0),
        _row("down", 3, "reflect"),
        _row("down", 3, "solve", 0.75),
    ]
    out = reflection_rewards(pd.DataFrame(rows))
    assert (out["role"] == "reflect").all() and len(out) == 4
    got = {(r.problem_id, r.iteration): r.reward for r in out.itertuples()}
    assert got == {("up", 2): 0.75, ("same", 2): 0.0, ("down", 2): -0.5, ("down", 3): 0.75}
    # the index points back at the reflect rows of the input table
    assert list(out.index) == [1, 4, 7, 9]


def test_reflection_rewards_per_sample_and_missing_scores():
    # two sampled reflections at iteration 2; the episode continued with sample 0
    rows = [
        _row("p", 1, "solve", 0.0),
        _row("p", 2, "reflect", candidate=0),
        _row("p", 2, "reflect", candidate=1),
        _row("p", 2, "solve", 0.5, candidate=0),
        _row("p", 2, "solve", 1.0, candidate=1),
        _row("p", 3, "reflect", candidate=0),
        _row("p", 3, "reflect", candidate=1),
        _row("p", 3, "solve", 0.0, candidate=0),
        _row("p", 3, "solve", None, candidate=1),
    ]
    out = reflection_rewards(rows).sort_values(["iteration", "candidate"])
    assert out["score_before"].tolist() == [0.0, 0.0, 0.5, 0.5]  # adopted = candidate 0
    assert out["reward"].tolist()[:3] == [0.5, 1.0, -0.5]
    assert pd.isna(out["reward"].iloc[3])


def test_failed_calls_get_no_reward_and_a_mostly_failed_rollout_stops_the_job():
    rows = [
        _row("p", 1, "solve", 0.5),
        _row("p", 2, "reflect", candidate=0),
        _row("p", 2, "reflect", candidate=1),  # the engine failed on this reflection
        _row("p", 2, "reflect", candidate=2),
        _row("p", 2, "solve", 0.0, candidate=0),
        _row("p", 2, "solve", 0.0, candidate=1),  # graded empty text: not a real 0
        _row("p", 2, "solve", 0.0, candidate=2),  # the engine failed on this retry
    ]
    for i in (2, 6):
        rows[i]["error"] = "vLLM failed for model m: boom"
    table = pd.DataFrame(rows)
    out = reflection_rewards(table).sort_values("candidate")
    assert out["reward"].iloc[0] == -0.5
    assert out["reward"].iloc[1:].isna().all()
    scored = table.assign(reward=reflection_rewards(table)["reward"], hidden_passed=None)
    assert rollout_summary(scored)["failed_calls"] == 2
    assert require_answers(table, "r") is table  # 2 of 7 failed: recorded, job goes on
    table["error"] = "vLLM failed for model m: boom"
    with pytest.raises(RuntimeError, match="r: 7 of 7 model calls failed; first: vLLM failed"):
        require_answers(table, "r")


def test_rloo_advantage_is_zero_for_equal_rewards_and_leave_one_out_otherwise():
    df = pd.DataFrame(
        {
            "problem_id": ["a"] * 3 + ["b"] * 2 + ["c"],
            "iteration": [2] * 6,
            "reward": [1.0, 0.0, 0.5, 0.25, 0.25, 1.0],
        }
    )
    adv = rloo_advantages(df).tolist()
    assert adv == pytest.approx([0.75, -0.75, 0.0, 0.0, 0.0, 0.0])


def test_paired_heldout_pairs_by_problem_iteration_and_sample():
    def traj(rewards):  # {(problem, candidate): reward} -> reflect rows at iteration 2
        rows = [
            {**_row(p, 2, "reflect", candidate=c), "reward": r} for (p, c), r in rewards.items()
        ]
        return pd.DataFrame(rows + [{**_row("x", 1, "solve", 0.0), "reward": None}])

    base = traj({("a", 0): 0.0, ("a", 1): 0.5, ("b", 0): 1.0, ("c", 0): 0.0})
    trained = traj({("a", 0): 1.0, ("a", 1): 0.5, ("b", 0): 0.0, ("d", 0): 1.0})
    out = paired_heldout(base, trained)
    # c and d have no partner; per-problem mean differences: a = +0.5, b = -1.0
    assert (out["pairs"], out["problems"]) == (3, 2)
    assert out["mean_difference"] == pytest.approx(-0.25)
    assert (out["trained_better"], out["base_better"], out["ties"]) == (1, 1, 1)
    lo, hi = out["ci95"]
    assert -1.0 <= lo <= out["mean_difference"] <= hi <= 0.5
    # SD of (+0.5, -1.0) = 1.0607; detectable effect = 2.8 * SD / sqrt(2)
    assert out["per_problem_sd"] == pytest.approx(1.5 / 2**0.5)
    assert out["detectable_effect"] == pytest.approx(2.8 * 1.5 / 2)
    assert paired_heldout(base.iloc[:0], trained)["mean_difference"] is None


def test_make_batches_keeps_prompt_groups_together():
    df = pd.DataFrame(
        {
            "problem_id": [f"p{i // 2}" for i in range(10)],
            "iteration": [2] * 10,
            "advantage": [1.0, -1.0] * 5,
        }
    )
    batches = make_batches(df, batch_size=4, epochs=1, seed=0)
    assert sum(len(b) for b in batches) == 10 and len(batches) == 3
    for b in batches:
        assert b.groupby("problem_id").size().eq(2).all()


# -- rollouts through the scripted engine --------------------------------------------------------
def test_sampled_rollout_rewards_each_reflection_with_its_own_retry():
    """Two reflections per step: sample 0 says 'use gold' (its retry passes), sample 1 does
    not (its retry fails). Both retries are checked; the episode continues with sample 0."""
    calls = {}

    def reflector(req, _):
        k = calls[qid(req)] = calls.get(qid(req), 0) + 1
        return "use gold" if k % 2 == 1 else "no idea"

    def actor(req, _):
        assert not is_reflect(req)
        text = user_text(req)
        if "use gold" in text:
            return f"gold_{qid(req)}"
        return "half" if qid(req) == "0" else "nope"

    task = AnswerKeyTask(2)
    act, ref = ScriptedBackend(actor), ScriptedBackend(reflector)
    traj = collect_rollouts(
        task,
        task.load(),
        act,
        ref,
        "/adapters/r1",
        Settings(max_iters=3),
        CELL,
        samples=2,
        temperature=1.0,
        max_tokens=64,
    )
    refl = traj[traj["role"] == "reflect"].sort_values(["problem_id", "candidate"])
    assert refl["reward"].tolist() == [0.5, 0.0, 1.0, 0.0]  # t0 started at 0.5 ("half")
    assert refl["reflection"].tolist() == ["use gold", "no idea"] * 2
    # one batched reflect call (2 problems x 2 samples) and one batched retry call
    assert [len(b) for b in ref.batches] == [4]
    assert all(r.adapter == "/adapters/r1" and r.temperature == 1.0 for r in ref.batches[0])
    assert len({r.seed for r in ref.batches[0]}) == 4  # each sample its own seed
    assert [len(b) for b in act.batches] == [2, 4]
    assert all(r.adapter is None for b in act.batches for r in b)  # the actor stays frozen
    # both problems solved by sample 0's retry, so the episodes stopped after iteration 2
    solve = traj[(traj["role"] == "solve") & (traj["candidate"] == 0)]
    assert solve.groupby("problem_id")["iteration"].max().tolist() == [2, 2]
    assert solve["hidden_passed"].tolist() == [False, False, True, True]
    data = training_samples(traj)
    assert data["advantage"].tolist() == [0.5, -0.5, 1.0, -1.0]
    assert json.loads(data["prompt"].iloc[0])[-1][0] == "user"


def test_retroformer_routes_reflections_to_the_reflector_with_the_adapter():
    def script(req, _):
        if is_reflect(req):
            return "I misread the question."
        return f"gold_{qid(req)}" if "misread" in user_text(req) else "wrong"

    task = AnswerKeyTask(2)
    actor, reflector = ScriptedBackend(script), ScriptedBackend(script)
    ctx = Context(
        task,
        actor,
        Settings(max_iters=2),
        CELL,
        reflect_backend=reflector,
        reflect_adapter="/adapters/retro",
    )
    episodes = [Episode(p) for p in task.load()]
    run_loop(Retroformer(), ctx, episodes, max_iters=2)
    assert [e.passed_by_iteration for e in episodes] == [[False, True]] * 2
    reqs = [r for b in reflector.batches for r in b]
    assert len(reqs) == 2 and all(is_reflect(r) and r.adapter == "/adapters/retro" for r in reqs)
    assert not any(is_reflect(r) or r.adapter for b in actor.batches for r in b)


def test_retroformer_needs_an_adapter_unless_base_is_allowed():
    task = AnswerKeyTask(1)
    backend = ScriptedBackend(lambda req, _: "wrong")
    ctx = Context(task, backend, Settings(max_iters=2), CELL)
    with pytest.raises(ValueError, match="retrospective adapter"):
        run_loop(Retroformer(), ctx, [Episode(task.problems[0])], max_iters=2)
    reflector = ScriptedBackend(lambda req, _: "think harder")
    ctx = Context(task, backend, Settings(max_iters=2), CELL, reflect_backend=reflector)
    run_loop(Retroformer(allow_base=True), ctx, [Episode(task.problems[0])], max_iters=2)
    assert [r.adapter for b in reflector.batches for r in b] == [None]


# -- the policy-gradient step on a real LoRA -------------------------------------------------------
PROMPT = json.dumps([["system", "You are helpful."], ["user", "Say hi."]])


def _tiny_model(model_dir):
    """A 2-layer random Qwen2 with the smoke model's tokenizer: fast enough for several steps."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(model_dir)
    cfg.update(
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            layer_types=["full_attention"] * 2,
        )
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def _peft_model(model_dir, tmp_path, *, tiny: bool):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tiny:
        base = _tiny_model(model_dir)
    else:
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    base.eval()
    init = write_init_adapter(
        base,
        tmp_path / "init",
        r=4,
        alpha=8,
        target_modules=["q_proj", "v_proj"],
        base_model_path=model_dir,
    )
    model = PeftModel.from_pretrained(base, str(init), adapter_name=POLICY, is_trainable=True)
    return model.eval(), tok


def _lora_state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def test_pg_update_changes_only_the_adapter_and_logs_kl_and_update_norm(smoke_model_dir, tmp_path):
    import torch

    torch.set_flush_denormal(True)
    model, tok = _peft_model(smoke_model_dir, tmp_path, tiny=False)
    base_before = {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if "lora_" not in n and n.endswith("q_proj.base_layer.weight")
    }
    with torch.no_grad():  # a non-zero B (as after earlier updates) so that KL > 0 at once
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    lora_before = _lora_state(model)
    batch = [
        {"prompt": PROMPT, "response": "Hello there!", "advantage": 0.5, "reward": 1.0},
        {"prompt": PROMPT, "response": "Go away.", "advantage": -0.5, "reward": 0.0},
    ]
    stats = pg_update(model, tok, batch, lr=1e-3, kl_coef=0.1)
    assert stats["kl"] > 0 and stats["kl_seq"] > 0
    assert stats["grad_norm"] > 0 and stats["update_norm"] > 0
    assert stats["mean_reward"] == 0.5 and stats["samples"] == 2 and stats["tokens"] > 4
    after = _lora_state(model)
    changed = [n for n in lora_before if not torch.equal(lora_before[n], after[n])]
    assert any("lora_B" in n for n in changed)
    assert all("retro_policy" in n for n in changed)
    for n, w in base_before.items():  # the frozen base is untouched
        assert torch.equal(w, dict(model.named_parameters())[n])
    # the saved adapter reloads onto a plain model with the trained weights
    from parammem.training.retroformer import save_adapter

    out = save_adapter(model, tmp_path / "saved", base_model_path=smoke_model_dir)
    cfg = json.loads((tmp_path / "saved" / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and (tmp_path / "saved" / "adapter_model.safetensors").is_file()
    from safetensors.torch import load_file

    saved = load_file(f"{out}/adapter_model.safetensors")
    key = next(k for k in saved if "lora_B" in k)
    assert saved[key].abs().sum() > 0 and ".retro_policy." not in key


def _seq_logp(model, tok, response):
    import torch

    from parammem.training.retroformer import _encode

    p, y = _encode(tok, {"prompt": PROMPT, "response": response})
    ids = torch.tensor([p + y])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(p) - 1 : -1].float()
    return float(torch.log_softmax(logits, -1).gather(-1, torch.tensor(y)[:, None]).sum())


def test_pg_update_moves_probability_towards_positive_advantage(smoke_model_dir, tmp_path):
    import torch

    model, tok = _peft_model(smoke_model_dir, tmp_path, tiny=True)
    good, bad = "Hello there!", "Go away."
    gap0 = _seq_logp(model, tok, good) - _seq_logp(model, tok, bad)
    batch = [
        {"prompt": PROMPT, "response": good, "advantage": 1.0, "reward": 1.0},
        {"prompt": PROMPT, "response": bad, "advantage": -1.0, "reward": -1.0},
    ]
    optimizer = torch.optim.AdamW(policy_parameters(model), lr=1e-2)
    steps = [pg_update(model, tok, batch, optimizer=optimizer, kl_coef=0.0) for _ in range(3)]
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # B = 0 at init: policy == base
    assert steps[-1]["kl"] > 0
    gap = _seq_logp(model, tok, good) - _seq_logp(model, tok, bad)
    assert gap > gap0 + 0.1, (gap0, gap, steps)


def test_train_from_config_writes_adapter_log_and_card(smoke_model_dir, tmp_path):
    """The whole job on a fake task with scripted actor and reflector; the policy is a tiny
    random model (the scripted reflector is not white-box, so it is loaded on its own)."""
    from transformers import AutoTokenizer

    from parammem.training.retroformer import train_from_config

    model_dir = tmp_path / "tiny"
    _tiny_model(smoke_model_dir).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(smoke_model_dir).save_pretrained(model_dir)

    class Task(AnswerKeyTask):
        def aux_problems(self, limit=None):
            return self.load(limit)

    def reflector(req, _):  # the seed decides: about half the samples carry the hint
        return "use gold" if req.seed % 2 else "no idea"

    def actor(req, _):
        return f"gold_{qid(req)}" if "use gold" in user_text(req) else "nope"

    config = {
        "seed": 0,
        "max_iters": 2,
        "backbones": {"tiny": {"model": str(model_dir)}},
        "retroformer": {
            "rollout_problems": 6,
            "heldout_problems": 2,
            "rollout_iters": 2,
            "samples_per_reflection": 2,
            "rounds": 2,
            "batch_size": 4,
            "r": 2,
            "alpha": 4,
            "lr": 1e-2,
            "target_modules": ["q_proj", "v_proj"],
            "max_tokens": 8,
        },
    }
    out = tmp_path / "retro"
    result = train_from_config(
        config,
        "tiny",
        "fake",
        out,
        task=Task(8),
        actor_backend=ScriptedBackend(actor),
        reflect_backend=ScriptedBackend(reflector),
    )
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    log = json.loads((out / "training_log.json").read_text())
    assert len(log["train_problems"]) == 6 and len(log["heldout_problems"]) == 2
    assert not set(log["train_problems"]) & set(log["heldout_problems"])
    assert [r["round"] for r in log["rounds"]] == [1, 2]
    assert log["updates"] and result["updates"] == len(log["updates"])
    for u in log["updates"]:
        assert {"mean_reward", "kl", "update_norm", "grad_norm"} <= set(u)
    assert log["heldout"]["base"]["reflections"] == 4  # 2 problems x 2 samples, 1 step
    assert result["heldout_reward_base"] == log["heldout"]["base"]["mean_reward"]
    assert log["heldout"]["paired"]["pairs"] == 4  # same seeds: every sample has a partner
    card = (out / "README.md").read_text()
    assert "Held-out reward" in card and "with 80% power" in card
    assert "detectable_effect" in log["heldout"]["paired"]
    assert (out / "train" / "rollouts_round2.parquet").is_file()


def test_reference_visible_tests_replace_model_written_tests_in_rollouts():
    from parammem.tasks.base import Problem

    class CodeTask(AnswerKeyTask):
        domain = "code"
        agent_writes_tests = True

        def __init__(self):
            super().__init__(1)
            self.problems = [
                Problem(
                    "c0",
                    "code",
                    "question 0",
                    {"answer": "gold_0", "test": "x = 1\nassert f(1) == 1\n"},
                )
            ]
            self.seen = []

        def feedback(self, problems, attempts, visible_tests=None):
            self.seen += list(visible_tests)
            return super().feedback(problems, attempts, visible_tests)

    task = CodeTask()
    backend = ScriptedBackend(lambda req, _: "nope")
    collect_rollouts(
        task,
        task.load(),
        backend,
        backend,
        None,
        Settings(max_iters=2),
        CELL,
        visible_tests="reference",
    )
    assert task.seen and all(t == ["assert f(1) == 1"] for t in task.seen)
    assert not any("unit tests" in user_text(r) for b in backend.batches for r in b)
    task = CodeTask()
    backend = ScriptedBackend(
        lambda req, _: "assert f(2) == 2" if "unit tests" in user_text(req) else "nope"
    )
    collect_rollouts(task, task.load(), backend, backend, None, Settings(max_iters=2), CELL)
    assert task.seen[0] == ["assert f(2) == 2"]  # "task": the agent's own tests
