"""LoRA SFT of the reflector: data helpers, the completion-only label mask on the real
tokenizer/trainer, the CLI wiring, and (marked smoke) a real tiny training run whose loss
must fall and whose adapter must change the reflector's greedy output."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from parammem.tasks.base import Problem
from parammem.training import sft_cli
from parammem.training.prompts import chat_dicts, reflector_messages
from parammem.training.sft import (
    data_sha256,
    loss_trend,
    split_by_problem,
    to_examples,
    validate_data,
)

MARK = "PITFALL CHECKLIST"


def _data(n: int = 8, samples: int = 1) -> pd.DataFrame:
    rows = []
    for i in range(n):
        for s in range(samples):
            rows.append(
                {
                    "task_id": f"aux/{i}",
                    "domain": "code",
                    "problem": f"def scale_{i}(xs: list[int]) -> list[int]:\n"
                    f'    """Return every element of xs multiplied by {i + 2}."""',
                    "reflection": f"{MARK}\n1. **Empty list**: return [] for [].\n"
                    f"2. **Mutation**: build a new list; never change xs in place ({i}).",
                    "sample_index": s,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- fast


def test_split_by_problem_is_grouped_seeded_and_disjoint():
    ids = [f"p{i // 3}" for i in range(60)]  # 20 problems x 3 samples
    train, val = split_by_problem(ids, 0.15, seed=0)
    assert sorted(train + val) == list(range(60))
    val_ids, train_ids = {ids[i] for i in val}, {ids[i] for i in train}
    assert not val_ids & train_ids and len(val_ids) == 3
    assert split_by_problem(ids, 0.15, seed=0) == (train, val)
    assert split_by_problem(ids, 0.15, seed=1) != (train, val)
    assert split_by_problem(ids, 0.0, seed=0) == (list(range(60)), [])
    assert len({ids[i] for i in split_by_problem(["a", "b"], 0.15, 0)[1]}) == 1


def test_examples_use_the_reflector_format_and_hash_is_content_based():
    df = _data(3)
    ex = to_examples(df)
    prob = Problem("aux/0", "code", df.problem[0])
    assert ex[0]["prompt"] == chat_dicts(reflector_messages(prob))
    assert ex[0]["completion"] == [{"role": "assistant", "content": df.reflection[0]}]
    h = data_sha256(df)
    assert h == data_sha256(df.copy()) and len(h) == 64
    changed = df.copy()
    changed.loc[1, "reflection"] += "!"
    assert data_sha256(changed) != h
    assert data_sha256(df.assign(extra=1)) == h  # only the training columns count


def test_validate_data():
    with pytest.raises(ValueError, match="lacks column"):
        validate_data(pd.DataFrame({"task_id": ["a"], "problem": ["p"]}))
    df = _data(3)
    df.loc[0, "reflection"] = "  "
    assert len(validate_data(df)) == 2
    with pytest.raises(ValueError, match="at least 2"):
        validate_data(_data(1))


def test_loss_trend():
    assert loss_trend([4, 3, 2, 1, 1, 0.5, 0.4, 0.2]) == pytest.approx((3.5, 0.3))
    assert loss_trend([2.0]) == (2.0, 2.0)


def test_cli_maps_arguments(tmp_path, monkeypatch):
    import parammem.training.sft as sft

    seen = {}

    def fake_train_lora(base_model, data, out_dir, **kw):
        seen.update(base_model=base_model, rows=len(data), out_dir=out_dir, **kw)
        return {"adapter_dir": str(out_dir)}

    monkeypatch.setattr(sft, "train_lora", fake_train_lora)
    data = tmp_path / "d.parquet"
    _data(5).to_parquet(data)
    parser = argparse.ArgumentParser()
    sft_cli.register(parser)
    args = parser.parse_args(
        [
            "--base-model", "package:x", "--data", str(data), "--out", str(tmp_path / "a"),
            "--r", "64", "--lr", "3e-5", "--epochs", "2", "--max-steps", "30", "--seed", "5",
            "--target-modules", "q_proj, v_proj", "--limit", "4", "--assert-loss-decrease",
        ]
    )  # fmt: skip
    assert sft_cli.run(args) == 0
    assert seen["base_model"] == "package:x" and seen["rows"] == 4
    assert (seen["r"], seen["alpha"], seen["lr"], seen["epochs"]) == (64, 32, 3e-5, 2.0)
    assert seen["max_steps"] == 30 and seen["seed"] == 5
    assert seen["target_modules"] == ("q_proj", "v_proj")
    assert seen["require_loss_decrease"] is True
    assert seen["data_source"].startswith("d.parquet (file sha256 ")
    # paper defaults when nothing is given
    defaults = parser.parse_args(["--base-model", "b", "--data", "d", "--out", "o"])
    assert (defaults.r, defaults.alpha, defaults.lr, defaults.epochs) == (128, 32, 2e-5, 3)
    assert defaults.target_modules == "q_proj,k_proj,v_proj,o_proj"
    assert defaults.val_fraction == 0.15


def test_labels_mask_only_the_completion(smoke_model_dir, tmp_path):
    """The real tokenizer + SFTTrainer preparation: prompt tokens carry label -100, the
    reflection (+ end-of-turn) tokens are labelled with themselves; padding is -100."""
    from parammem.training.sft import build_trainer

    df = _data(4, samples=2)
    trainer, info = build_trainer(
        smoke_model_dir, df, tmp_path, r=4, max_steps=1, batch_size=2, grad_accum=1,
        max_length=512, val_fraction=0.25,
    )  # fmt: skip
    assert info["n_train"] == 6 and info["n_val"] == 2  # grouped: 3 + 1 problems
    assert info["device"] == "cpu" and info["dtype"] in ("bfloat16", "float32")
    tok = trainer.processing_class
    by_problem = {r.problem: r for r in df.itertuples()}
    for ex in trainer.train_dataset:
        ids, labels = ex["input_ids"], ex["labels"]
        prompt_ids = tok.apply_chat_template(ex["prompt"], add_generation_prompt=True)
        if not isinstance(prompt_ids, list):  # BatchEncoding in some versions
            prompt_ids = prompt_ids["input_ids"]
        n = len(prompt_ids)
        assert ids[:n] == prompt_ids
        assert all(lab == -100 for lab in labels[:n])
        assert labels[n:] == ids[n:] and len(ids) > n
        problem = ex["prompt"][1]["content"].split("```python\n", 1)[1].rsplit("\n```", 1)[0]
        assert tok.decode(ids[n:]) == by_problem[problem].reflection + "<|im_end|>\n"
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    pad = batch["attention_mask"] == 0
    assert (batch["labels"][pad] == -100).all()


# --------------------------------------------------------------------------- smoke


def _greedy(model, tok, problem: Problem, max_new_tokens: int = 20) -> str:
    import torch

    enc = tok.apply_chat_template(
        chat_dicts(reflector_messages(problem)),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
        )
    return tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.mark.smoke
def test_train_lora_smoke_loss_falls_and_adapter_changes_output(smoke_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from parammem.training.sft import train_lora

    out = tmp_path / "adapter"
    summary = train_lora(
        smoke_model_dir, _data(8), out, r=8, alpha=16, lr=1e-3, max_steps=6, batch_size=2,
        grad_accum=1, max_length=192, eval_every=3, seed=0, require_loss_decrease=True,
    )  # fmt: skip
    # a real optimisation: the training loss falls, validation loss too, best is reloaded
    assert summary["global_steps"] == 6
    assert summary["loss_decreased"] and summary["train_loss_last"] < summary["train_loss_first"]
    assert summary["best_eval_loss"] < summary["eval_loss_start"]
    assert summary["best_checkpoint_loaded"]
    for name in ("adapter_config.json", "adapter_model.safetensors", "training_log.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists() and not Path(f"{out}.tmp").exists()
    log = json.loads((out / "training_log.json").read_text())
    assert [s["step"] for s in log["steps"]] == list(range(1, 7))
    assert all("loss" in s and "seconds" in s for s in log["steps"])
    assert [e["step"] for e in log["evals"]] == [0, 3, 6]
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and cfg["lora_alpha"] == 16
    assert set(cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    card = (out / "README.md").read_text()
    assert summary["data_sha256"] in card and smoke_model_dir in card and "| lr | 0.001 |" in card

    # the adapter changes the reflector's greedy output on an unseen problem
    tok = AutoTokenizer.from_pretrained(smoke_model_dir)
    base = AutoModelForCausalLM.from_pretrained(smoke_model_dir, dtype=torch.bfloat16)
    unseen = Problem(
        "unseen/0", "code", 'def halve(xs: list[int]) -> list[int]:\n    """Halve each xs."""'
    )
    before = _greedy(base, tok, unseen)
    tuned = PeftModel.from_pretrained(base, str(out))
    after = _greedy(tuned, tok, unseen)
    assert after != before
    # the learnt style (upper-case PITFALL headings) shows, and the base never writes it
    assert "PITFALL" in after and "PITFALL" not in before, (before, after)

    # the same through the project's backend with a per-request adapter (ParamAgent's path)
    try:
        from parammem.backends import engine_class, load_backend

        engine_class("hf")
    except (ImportError, AttributeError, KeyError):
        return  # the hf engine has not landed in this checkout
    from parammem.backends.base import GenerationRequest

    backend = load_backend("hf", smoke_model_dir)
    req = GenerationRequest(messages=reflector_messages(unseen), temperature=0.0, max_tokens=20)
    base_out, tuned_out = backend.generate([req, replace(req, adapter=str(out))])
    assert base_out.error is None and tuned_out.error is None
    assert tuned_out.text != base_out.text
    assert "PITFALL" in tuned_out.text and "PITFALL" not in base_out.text
