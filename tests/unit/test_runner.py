"""run_cell: outputs per the contract, resume after a kill, two-stage reruns failures only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parammem.backends.scripted import ScriptedBackend
from parammem.methods.runner import run_cell

from .fakes import AnswerKeyTask

CONFIG = {
    "backbones": {"b": {"model": "scripted", "gpus": 0}},
    "engine": "hf",
    "max_iters": 2,
    "chunk_size": 2,
    "seed": 0,
}


def answer_odd(req, _):
    """Odd problems are answered right on the first try, even ones never."""
    text = req.messages[-1][1]
    if "different diagnoses" in text or "mistake" in text:
        return "Reflection 1:\nProblem: x\nFix: y"
    qid = int(text.split("question ")[1].split()[0].strip("."))
    return f"gold_{qid}" if qid % 2 else "wrong"


def run(tmp_path, method, backend, task, name=None, **kw):
    out = tmp_path / (name or method)
    metrics = run_cell(
        CONFIG,
        backbone="b",
        dataset="fake",
        method=method,
        out_dir=out,
        backend=backend,
        task=task,
        **kw,
    )
    return out, metrics


def test_outputs_follow_the_contract(tmp_path):
    out, metrics = run(tmp_path, "reflexion", ScriptedBackend(answer_odd), AnswerKeyTask(4))
    eps = pd.read_parquet(out / "episodes.parquet")
    traj = pd.read_parquet(out / "trajectory.parquet")
    assert list(eps.problem_id) == ["t0", "t1", "t2", "t3"]
    assert list(eps.passed) == [False, True, False, True]
    assert metrics["accuracy"] == 0.5 and metrics["n"] == 4
    assert metrics["solved_by_iteration"] == [0.5, 0.5]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for col in (
        "problem_id",
        "iteration",
        "role",
        "prompt",
        "response",
        "feedback",
        "seed",
        "prompt_tokens",
        "completion_tokens",
        "seconds",
        "hidden_passed",
    ):
        assert col in traj.columns
    assert set(traj.role) == {"solve", "reflect"}
    assert metrics["prompt_tokens"] == int(traj.prompt_tokens.sum()) > 0


def test_killed_run_resumes_without_duplicating_or_losing_episodes(tmp_path):
    class DiesInSecondChunk(ScriptedBackend):
        def generate(self, requests):
            if len(self.batches) == 3:  # chunk 1 (t0, t1) takes 3 batches; die in chunk 2
                raise RuntimeError("killed")
            return super().generate(requests)

    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path, "reflexion", DiesInSecondChunk(answer_odd), AnswerKeyTask(4), "resumed")
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    assert len(list((tmp_path / "resumed" / "parts").glob("*-episodes.parquet"))) == 1

    backend = ScriptedBackend(answer_odd)
    out, metrics = run(tmp_path, "reflexion", backend, AnswerKeyTask(4), "resumed")
    asked = {
        req.messages[-1][1].split("question ")[1].split()[0].strip(".")
        for b in backend.batches
        for req in b
    }
    assert asked == {"2", "3"}  # only the unfinished chunk was redone
    ref, ref_metrics = run(
        tmp_path, "reflexion", ScriptedBackend(answer_odd), AnswerKeyTask(4), "fresh"
    )
    a, b = pd.read_parquet(out / "trajectory.parquet"), pd.read_parquet(ref / "trajectory.parquet")
    assert len(a) == len(b)
    assert a.groupby("problem_id").size().to_dict() == b.groupby("problem_id").size().to_dict()
    assert metrics["accuracy"] == ref_metrics["accuracy"]


def test_two_stage_reruns_only_stage1_failures(tmp_path, monkeypatch):
    class HashEmbedder:
        def __init__(self, *_):
            pass

        def encode(self, texts):
            vecs = np.array([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=float)
            return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    monkeypatch.setattr("parammem.embeddings.Embedder", HashEmbedder, raising=False)
    stage1, _ = run(tmp_path, "dot", ScriptedBackend(answer_odd), AnswerKeyTask(4))

    def stage2_script(req, i):
        text = req.messages[-1][1]
        assert (
            "similar problem you solved before" in text
            or "different diagnoses" in text
            or "earlier case" in text
            or "question" in text
        )
        return answer_odd(req, i)

    backend = ScriptedBackend(stage2_script)
    out, metrics = run(
        tmp_path,
        "dot_bank",
        backend,
        AnswerKeyTask(4),
        stage1=str(stage1 / "metrics.json"),  # as the workflow passes it
    )
    traj = pd.read_parquet(out / "trajectory.parquet")
    assert set(traj[traj.stage == 2].problem_id) == {"t0", "t2"}  # only the stage-1 failures
    assert sum(len(b) for b in backend.batches) == (traj.stage == 2).sum()
    first = backend.batches[0][0].messages[-1][1]
    assert "similar problem you solved before" in first  # retrieved worked example
    eps = pd.read_parquet(out / "episodes.parquet")
    assert all(len(x) == 4 for x in eps.passed_by_iteration)  # 2 stage-1 + 2 stage-2 iterations
    assert set(traj.stage) == {1, 2} and set(traj.method) == {"dot_bank"}
