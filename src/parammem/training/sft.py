"""LoRA SFT of the ParamMem reflector: (problem -> generic reflection), loss on the reflection.

Built on TRL's `SFTTrainer` with a *conversational prompt-completion* dataset:
`prompt = reflector_messages(problem)` (the exact input ParamAgent sends at inference) and
`completion = [assistant: reflection]`. TRL renders both with the tokenizer's chat template
and sets the labels of every prompt token to -100, so the loss covers the reflection tokens
(and the end-of-turn token that teaches the reflector to stop) only; tests check the mask.

Validation: a `val_fraction` of the *problems* (all samples of a problem fall on the same
side) is held out; the trainer evaluates every `eval_every` steps (default: every epoch,
or 4 times over a `max_steps` run), keeps checkpoints, and reloads the best one by
validation loss at the end. Everything is seeded.

Outputs in `out_dir` (written to a temp dir, then renamed):
- `adapter_config.json` + `adapter_model.safetensors` (peft), loadable per request;
- `training_log.json`: per-step train loss / lr / grad norm / wall seconds, per-eval
  validation loss, best step, totals;
- `README.md`: a model card (base model, data sha256, hyperparameters, losses).

Defaults are the paper's (r=128, alpha=32, lr 2e-5, 3 epochs); the public code used r=64,
lr 3e-5, targets q/k/v/o, cosine schedule, warmup 0.03, max length 2048, 15% validation.
On CPU the base is loaded in bf16 when the CPU has native bf16 (AVX512-BF16/AMX): measured
on the 2-core dev machine for the 0.5B smoke model at ~250-380 tokens/step, bf16 weights
took ~1.1-1.7 s/step vs ~3 s (fp32) and ~2.5 s (fp32 + bf16 autocast). LoRA weights stay
fp32 (peft's default), so the optimiser state is fp32 either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from parammem.tasks.base import Problem
from parammem.training.prompts import chat_dicts, reflector_messages

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("task_id", "domain", "problem", "reflection")

# Paper (arXiv 2602.23320) and public-code hyperparameters, for configs and the card.
PAPER_DEFAULTS = {"r": 128, "alpha": 32, "lr": 2e-5, "epochs": 3}
CODE_DEFAULTS = {
    "r": 64,
    "alpha": 32,
    "dropout": 0.05,
    "lr": 3e-5,
    "target_modules": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "scheduler": "cosine",
    "warmup_ratio": 0.03,
    "max_length": 2048,
    "val_fraction": 0.15,
}


# --------------------------------------------------------------------------- data


def validate_data(data: pd.DataFrame) -> pd.DataFrame:
    """Check the synthesis table's columns; drop rows with an empty reflection."""
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"training data lacks column(s) {missing}; has {list(data.columns)}")
    keep = data["reflection"].fillna("").astype(str).str.strip().astype(bool)
    if (~keep).any():
        log.warning("dropping %d row(s) with an empty reflection", int((~keep).sum()))
    data = data[keep].reset_index(drop=True)
    if len(data) < 2:
        raise ValueError(f"need at least 2 (problem, reflection) rows to train, got {len(data)}")
    return data


def data_sha256(data: pd.DataFrame) -> str:
    """sha256 of the training content (task_id, domain, problem, reflection per row, in
    order): identical data gives an identical hash whatever the parquet encoding."""
    digest = hashlib.sha256()
    for row in data[list(REQUIRED_COLUMNS)].itertuples(index=False):
        digest.update(json.dumps(list(row), ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def to_examples(data: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows -> conversational prompt-completion examples (the reflector's input format)."""
    out = []
    for row in data.itertuples(index=False):
        problem = Problem(task_id=str(row.task_id), domain=row.domain, prompt=str(row.problem))
        out.append(
            {
                "prompt": chat_dicts(reflector_messages(problem)),
                "completion": [{"role": "assistant", "content": str(row.reflection).strip()}],
            }
        )
    return out


def split_by_problem(
    task_ids: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Row indices (train, val): a seeded `val_fraction` of the distinct problems is held
    out (at least one when val_fraction > 0 and there are >= 2 problems)."""
    groups = sorted(set(task_ids))
    n_val = 0
    if val_fraction > 0 and len(groups) >= 2:
        n_val = min(len(groups) - 1, max(1, round(val_fraction * len(groups))))
    random.Random(seed).shuffle(groups)
    val_groups = set(groups[:n_val])
    train = [i for i, t in enumerate(task_ids) if t not in val_groups]
    val = [i for i, t in enumerate(task_ids) if t in val_groups]
    return train, val


# --------------------------------------------------------------------------- device


def pick_dtype(dtype: str = "auto"):
    """torch dtype for the frozen base: bf16 on CUDA with bf16 support and on CPUs with
    native bf16 (measured fastest, see module docstring), else fp32."""
    import torch

    if dtype != "auto":
        return {
            "bf16": torch.bfloat16,
            "bfloat16": torch.bfloat16,
            "fp32": torch.float32,
            "float32": torch.float32,
            "fp16": torch.float16,
            "float16": torch.float16,
        }[dtype]
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - any failure means: no fast bf16 path
        native = False
    return torch.bfloat16 if native else torch.float32


# --------------------------------------------------------------------------- trainer


def build_trainer(
    base_model: str,
    data: pd.DataFrame,
    work_dir: Path,
    *,
    r: int = 128,
    alpha: int = 32,
    dropout: float = 0.05,
    lr: float = 2e-5,
    epochs: float = 3,
    target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
    val_fraction: float = 0.15,
    max_steps: int | None = None,
    batch_size: int = 4,
    grad_accum: int = 4,
    max_length: int = 2048,
    seed: int = 0,
    eval_every: int | None = None,
    scheduler: str = "cosine",
    warmup_ratio: float = 0.03,
    dtype: str = "auto",
    gradient_checkpointing: bool | None = None,
    callbacks: Sequence[Any] = (),
):
    """Load the base, attach LoRA, prepare datasets; return (SFTTrainer, info dict).

    `info` has n_train / n_val / dtype / device / the resolved model path."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    from parammem.models import resolve_model

    cuda = torch.cuda.is_available()
    if not cuda:
        # Without it CPU step time grows ~5x as the loss falls (denormal floats).
        torch.set_flush_denormal(True)
    set_seed(seed)

    data = validate_data(data)
    train_idx, val_idx = split_by_problem(list(data["task_id"].astype(str)), val_fraction, seed)
    examples = to_examples(data)
    train_ds = Dataset.from_list([examples[i] for i in train_idx])
    val_ds = Dataset.from_list([examples[i] for i in val_idx]) if val_idx else None

    path = resolve_model(base_model)
    torch_dtype = pick_dtype(dtype)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    model.config.use_cache = False

    if max_steps is not None and max_steps <= 0:
        max_steps = None
    if eval_every is None and max_steps is not None:
        eval_every = max(1, max_steps // 4)
    strategy = "steps" if eval_every else "epoch"
    has_val = val_ds is not None
    if gradient_checkpointing is None:
        gradient_checkpointing = cuda  # memory on GPU; on CPU it only costs time

    config = SFTConfig(
        output_dir=str(work_dir / "checkpoints"),
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=lr,
        lr_scheduler_type=scheduler,
        warmup_steps=warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=0.0,
        logging_strategy="steps",
        logging_steps=1,
        logging_first_step=True,
        eval_strategy=strategy if has_val else "no",
        eval_steps=eval_every if strategy == "steps" else None,
        eval_on_start=has_val,
        save_strategy=strategy if has_val else "no",
        save_steps=eval_every if strategy == "steps" else None,
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=has_val,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        seed=seed,
        data_seed=seed,
        # Autocast only on GPU; on CPU the weights themselves are already bf16 (or fp32).
        bf16=cuda and torch_dtype == torch.bfloat16,
        fp16=cuda and torch_dtype == torch.float16,
        use_cpu=not cuda,
        gradient_checkpointing=gradient_checkpointing,
        max_length=max_length,
        completion_only_loss=True,
        packing=False,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    peft_config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    info = {
        "model_path": str(path),
        "n_train": len(train_ds),
        "n_val": len(val_ds) if val_ds is not None else 0,
        "n_train_problems": len({data["task_id"].iloc[i] for i in train_idx}),
        "n_val_problems": len({data["task_id"].iloc[i] for i in val_idx}),
        "dtype": str(torch_dtype).removeprefix("torch."),
        "device": "cuda" if cuda else "cpu",
        "eval_every": eval_every or "epoch",
        "gradient_checkpointing": gradient_checkpointing,
    }
    return trainer, info


def _timing_callback(records: list[dict]):
    from transformers import TrainerCallback

    class _Timing(TrainerCallback):
        def __init__(self):
            self.t0 = time.perf_counter()

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kw):
            records.append(
                {
                    "step": state.global_step,
                    "seconds": time.perf_counter() - self.t0,
                    **(logs or {}),
                }
            )

    return _Timing()


def loss_trend(losses: Sequence[float]) -> tuple[float, float]:
    """(mean of the first quarter, mean of the last quarter) of a loss curve."""
    if not losses:
        return math.nan, math.nan
    k = max(1, len(losses) // 4)
    return sum(losses[:k]) / k, sum(losses[-k:]) / k


def train_lora(
    base_model: str,
    data: pd.DataFrame,
    out_dir: Path,
    *,
    r: int = 128,
    alpha: int = 32,
    dropout: float = 0.05,
    lr: float = 2e-5,
    epochs: float = 3,
    target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
    val_fraction: float = 0.15,
    max_steps: int | None = None,
    batch_size: int = 4,
    grad_accum: int = 4,
    max_length: int = 2048,
    seed: int = 0,
    eval_every: int | None = None,
    scheduler: str = "cosine",
    warmup_ratio: float = 0.03,
    dtype: str = "auto",
    gradient_checkpointing: bool | None = None,
    require_loss_decrease: bool = False,
    data_source: str | None = None,
) -> dict:
    """Train the reflector adapter on (problem -> reflection) rows; write `out_dir`.

    `data` needs columns task_id, domain, problem, reflection (the synthesis parquet).
    With `require_loss_decrease`, raise RuntimeError unless the mean train loss of the
    last quarter of steps is below that of the first quarter (the smoke preset's check).
    Returns a summary dict (also stored in `training_log.json`)."""
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t_start = time.perf_counter()

    data = validate_data(data)
    records: list[dict] = []
    hyper = {
        "r": r,
        "alpha": alpha,
        "dropout": dropout,
        "lr": lr,
        "epochs": epochs,
        "target_modules": list(target_modules),
        "val_fraction": val_fraction,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "max_length": max_length,
        "seed": seed,
        "eval_every": eval_every,
        "scheduler": scheduler,
        "warmup_ratio": warmup_ratio,
        "dtype": dtype,
    }
    trainer, info = build_trainer(
        base_model,
        data,
        work,
        **hyper,
        gradient_checkpointing=gradient_checkpointing,
        callbacks=[_timing_callback(records)],
    )
    t_train = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - t_train

    trainer.model.save_pretrained(str(work))  # the best adapter when validation is on
    shutil.rmtree(work / "checkpoints", ignore_errors=True)

    steps = [
        {
            k: rec[k]
            for k in ("step", "epoch", "loss", "learning_rate", "grad_norm", "seconds")
            if k in rec
        }
        for rec in records
        if "loss" in rec and "eval_loss" not in rec
    ]
    evals = [
        {"step": rec["step"], "eval_loss": rec["eval_loss"], "seconds": rec["seconds"]}
        for rec in records
        if "eval_loss" in rec
    ]
    losses = [s["loss"] for s in steps]
    first, last = loss_trend(losses)
    trained_evals = [e for e in evals if e["step"] > 0]  # step 0 = eval_on_start, no checkpoint
    best = min(trained_evals, key=lambda e: e["eval_loss"]) if trained_evals else None
    summary = {
        "base_model": base_model,
        **info,
        "data_sha256": data_sha256(data),
        "data_source": data_source,
        "rows": len(data),
        "hyperparameters": {**hyper, "gradient_checkpointing": info["gradient_checkpointing"]},
        "global_steps": int(result.global_step),
        "train_loss_first": first,
        "train_loss_last": last,
        "loss_decreased": bool(last < first),
        "eval_loss_start": evals[0]["eval_loss"] if evals and evals[0]["step"] == 0 else None,
        "best_eval_loss": best["eval_loss"] if best else None,
        "best_step": best["step"] if best else None,
        "best_checkpoint_loaded": bool(trainer.state.best_model_checkpoint),
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - t_start, 2),
        "versions": _versions(),
    }
    log_doc = {**summary, "steps": steps, "evals": evals}
    (work / "training_log.json").write_text(json.dumps(log_doc, indent=2) + "\n")
    (work / "README.md").write_text(model_card(summary, steps, evals))

    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)
    summary["adapter_dir"] = str(out_dir)
    log.info(
        "reflector trained: %d steps in %.1fs, train loss %.4f -> %.4f, best val %s",
        summary["global_steps"],
        train_seconds,
        first,
        last,
        summary["best_eval_loss"],
    )
    if require_loss_decrease and not summary["loss_decreased"]:
        raise RuntimeError(
            f"training loss did not go down ({first:.4f} -> {last:.4f}); see "
            f"{out_dir / 'training_log.json'}"
        )
    return summary


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def model_card(summary: dict, steps: list[dict], evals: list[dict]) -> str:
    """A short markdown model card for the adapter directory."""
    from parammem.models import PACKAGED_MODELS

    base = summary["base_model"]
    packaged = PACKAGED_MODELS.get(base.removeprefix("package:"))
    what = f" ({packaged.hub_id})" if packaged else ""
    h = summary["hyperparameters"]
    lines = [
        "# ParamMem reflector adapter",
        "",
        "A LoRA adapter that writes a generic reflection for an unseen problem (code: "
        "pitfalls of a signature + docstring; math: common mistakes; QA: a question "
        "decomposition). Input format: `parammem.training.prompts.reflector_messages` "
        "rendered with the base model's chat template.",
        "",
        f"- base model: `{base}`{what}",
        f"- data: {summary['rows']} rows ({summary['n_train']} train / {summary['n_val']} "
        f"validation; {summary['n_train_problems']} / {summary['n_val_problems']} problems)",
        f"- data sha256 (task_id, domain, problem, reflection rows): `{summary['data_sha256']}`",
    ]
    if summary.get("data_source"):
        lines.append(f"- data file: `{summary['data_source']}`")
    lines += [
        f"- device / dtype: {summary['device']} / {summary['dtype']}",
        "",
        "## Hyperparameters",
        "",
        "| name | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in h.items()),
        "",
        "Loss is on the reflection (completion) tokens only. Paper defaults: r=128, alpha=32, "
        "lr 2e-5, 3 epochs; public code: r=64, lr 3e-5, q/k/v/o, cosine, warmup 0.03.",
        "",
        "## Result",
        "",
        f"- optimisation steps: {summary['global_steps']} in {summary['train_seconds']} s "
        f"(wall {summary['wall_seconds']} s)",
        f"- train loss (mean of first / last quarter of steps): "
        f"{_fmt(summary['train_loss_first'])} -> {_fmt(summary['train_loss_last'])}",
        f"- validation loss before training: {_fmt(summary['eval_loss_start'])}",
        f"- best validation loss: {_fmt(summary['best_eval_loss'])} at step "
        f"{summary['best_step']} (the adapter saved here"
        + (" is that checkpoint)" if summary["best_checkpoint_loaded"] else " is the last step)"),
        f"- libraries: {', '.join(f'{k} {v}' for k, v in summary['versions'].items())}",
        "",
        "Per-step losses and validation losses: `training_log.json`.",
        "",
    ]
    return "\n".join(lines)
