"""Per-cell report: synthetic run dirs written here per docs/design.md's run-output contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parammem.cli import main
from parammem.report.cell import build_cell, significance_path, write_cell
from parammem.report.runs import ReportInputError

WORDS = (
    "off by one index boundary empty list recursion base case overflow sign parse "
    "rounding float integer division negative input sort order duplicate key string "
    "whitespace unicode carry modulo prime loop invariant cache memo"
).split()


def make_run(
    root: Path,
    backbone: str,
    dataset: str,
    method: str,
    passed: list[bool],
    *,
    max_iters: int = 3,
    reflections: int = 2,
    spread: int = 3,
    seed: int = 0,
    gpu_seconds: float | None = None,
) -> Path:
    """Write trajectory.parquet, episodes.parquet, metrics.json for one run.

    ``spread`` words per reflection are drawn from a pool whose size grows with ``spread``,
    so a larger spread gives more diverse reflections.
    """
    rng = np.random.default_rng(seed)
    run = root / backbone / dataset / method
    run.mkdir(parents=True, exist_ok=True)
    traj, eps = [], []
    pool = WORDS[: min(len(WORDS), 4 * spread)]
    for i, ok in enumerate(passed):
        pid = f"{dataset}/{i}"
        last = 1 if method == "base" else max_iters
        solved_at = int(rng.integers(1, last + 1)) if ok else None
        iters = solved_at if ok else last
        for it in range(1, iters + 1):
            traj.append(_row(method, dataset, backbone, pid, it, "solve", "def f(): pass"))
            if method != "base" and it < iters:
                for c in range(reflections):
                    text = " ".join(rng.choice(pool, size=spread))
                    traj.append(_row(method, dataset, backbone, pid, it, "reflect", text, c))
        pbi = [bool(ok and solved_at is not None and k >= solved_at) for k in range(1, 1 + iters)]
        eps.append(
            {
                "problem_id": pid,
                "passed": bool(ok),
                "status": "solved" if ok else "failed",
                "iterations_used": iters,
                "passed_by_iteration": pbi + [pbi[-1]] * (max_iters - len(pbi))
                if method != "base"
                else pbi,
                "prompt_tokens": 100 * iters,
                "completion_tokens": 40 * iters,
                "seconds": 0.5 * iters,
            }
        )
    traj_df, ep_df = pd.DataFrame(traj), pd.DataFrame(eps)
    traj_df.to_parquet(run / "trajectory.parquet")
    ep_df.to_parquet(run / "episodes.parquet")
    pbi = np.array([list(x) + [x[-1]] * (max_iters - len(x)) for x in ep_df.passed_by_iteration])
    metrics = {
        "method": method,
        "dataset": dataset,
        "backbone": backbone,
        "model": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        "n": len(passed),
        "accuracy": float(np.mean(passed)),
        "solved_by_iteration": pbi.mean(axis=0).tolist(),
        "mean_iterations": float(ep_df.iterations_used.mean()),
        "prompt_tokens": int(ep_df.prompt_tokens.sum()),
        "completion_tokens": int(ep_df.completion_tokens.sum()),
        "wall_seconds": 12.5,
        "gpu_seconds": gpu_seconds,
        "cache_hits": 3,
        "cache_misses": 9,
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def _row(method, dataset, backbone, pid, it, role, response, candidate=0):
    return {
        "method": method,
        "dataset": dataset,
        "backbone": backbone,
        "problem_id": pid,
        "stage": 1,
        "iteration": it,
        "role": role,
        "candidate": candidate,
        "prompt": json.dumps([{"role": "user", "content": "solve"}]),
        "response": response,
        "feedback": "failed: assert f(1) == 2",
        "visible_score": 0.5,
        "hidden_passed": None,
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "seconds": 0.5,
        "seed": 1,
        "temperature": 0.7,
        "cached": False,
    }


def make_cell(root: Path, backbone="qwen0.5b", dataset="humaneval", n=20, seed=0):
    """A small cell with base, reflexion, dot and paramagent runs; returns their dirs."""
    rng = np.random.default_rng(seed)
    accs = {"base": 0.3, "reflexion": 0.45, "dot": 0.5, "paramagent": 0.7}
    spreads = {"base": 1, "reflexion": 2, "dot": 4, "paramagent": 6}
    return [
        make_run(
            root, backbone, dataset, m, list(rng.random(n) < a), spread=spreads[m], seed=seed + k
        )
        for k, (m, a) in enumerate(accs.items())
    ]


@pytest.fixture
def hash_embedder():
    from parammem.embeddings import Embedder

    return Embedder("hash")


def test_cell_rows_and_columns(tmp_path, hash_embedder):
    runs = make_cell(tmp_path / "eval")
    res = build_cell(runs[::-1], embedder=hash_embedder, n_boot=500)
    t = res.table
    assert list(t["method"]) == ["base", "reflexion", "dot", "paramagent"]  # canonical order
    for col in (
        "n",
        "accuracy",
        "ci_low",
        "ci_high",
        "mean_iterations",
        "solved_by_iter_1",
        "solved_by_iter_3",
        "prompt_tokens",
        "completion_tokens",
        "wall_seconds",
        "gpu_seconds",
        "diversity",
        "mcnemar_p",
        "paired_reference",
    ):
        assert col in t.columns, col
    assert (t["n"] == 20).all()
    assert ((t["ci_low"] <= t["accuracy"]) & (t["accuracy"] <= t["ci_high"])).all()
    # the last solved-by-iteration value is the final accuracy (carried forward)
    np.testing.assert_allclose(t["solved_by_iter_3"], t["accuracy"])
    assert (t.filter(like="solved_by_iter_").diff(axis=1).iloc[:, 1:] >= 0).all().all()
    base = t.set_index("method").loc["base"]
    assert np.isnan(base["diversity"]) and base["n_reflections"] == 0
    assert np.isnan(base["gpu_seconds"])
    div = t.set_index("method")["diversity"]
    assert div["paramagent"] > div["reflexion"]  # wider word pool -> more diverse
    assert np.isnan(t.set_index("method").loc["paramagent", "mcnemar_p"])
    assert t.set_index("method").loc["base", "paired_reference"] == "paramagent"

    sig = res.significance
    assert list(sig["method"]) == ["base", "reflexion", "dot"]
    assert (sig["n_paired"] == 20).all()
    assert (
        sig["reference_only"] + sig["method_only"] + sig["both_correct"] + sig["neither"] == 20
    ).all()
    assert (sig["p_holm"] >= sig["p_value"]).all()


def test_write_cell_and_companion(tmp_path, hash_embedder):
    runs = make_cell(tmp_path / "eval")
    out = tmp_path / "reports" / "humaneval_qwen0.5b.csv"
    res = build_cell(runs, embedder=hash_embedder, n_boot=200)
    paths = write_cell(res, out)
    assert paths == (out, significance_path(out))
    assert paths[1].name == "humaneval_qwen0.5b_significance.csv"
    back = pd.read_csv(out)
    assert len(back) == 4 and back["accuracy"].notna().all()
    assert len(pd.read_csv(paths[1])) == 3


def test_cell_without_reference_has_header_only_significance(tmp_path, hash_embedder):
    runs = make_cell(tmp_path / "eval")[:2]
    res = build_cell(runs, embedder=hash_embedder, n_boot=100)
    assert res.significance.empty and "p_value" in res.significance.columns
    assert (res.table["paired_reference"] == "").all()


def test_missing_metrics_names_file(tmp_path, hash_embedder):
    runs = make_cell(tmp_path / "eval")
    (runs[1] / "metrics.json").unlink()
    with pytest.raises(ReportInputError, match=str(runs[1] / "metrics.json")):
        build_cell(runs, embedder=hash_embedder)


def test_zero_problem_cell_names_file(tmp_path, hash_embedder):
    run = make_run(tmp_path, "qwen0.5b", "mbpp", "reflexion", [True, False])
    metrics = json.loads((run / "metrics.json").read_text()) | {"n": 0}
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ReportInputError, match=r"metrics\.json.*zero problems"):
        build_cell([run], embedder=hash_embedder)
    # an empty episodes table with a consistent n is caught too, naming episodes.parquet
    (run / "metrics.json").write_text(json.dumps(metrics | {"n": 2}))
    pd.read_parquet(run / "episodes.parquet").iloc[:0].to_parquet(run / "episodes.parquet")
    with pytest.raises(ReportInputError, match=str(run / "episodes.parquet")):
        build_cell([run], embedder=hash_embedder)


def test_missing_trajectory_and_inconsistent_runs(tmp_path, hash_embedder):
    runs = make_cell(tmp_path / "eval")
    (runs[2] / "trajectory.parquet").unlink()
    with pytest.raises(ReportInputError, match=str(runs[2] / "trajectory.parquet")):
        build_cell(runs, embedder=hash_embedder)
    assert len(build_cell(runs, diversity=False).table) == 4  # not needed without diversity
    other = make_run(tmp_path / "eval", "qwen0.5b", "mbpp", "reflexion", [True])
    with pytest.raises(ReportInputError, match="disagree"):
        build_cell([runs[0], other], diversity=False)


def test_cli_cell_exit_code_and_message(tmp_path, capsys):
    runs = make_cell(tmp_path / "eval", n=8)
    out = tmp_path / "reports" / "humaneval_qwen0.5b.csv"
    args = [
        "report",
        "cell",
        "--runs",
        *map(str, runs),
        "--out",
        str(out),
        "--embedder",
        "hash",
        "--n-boot",
        "200",
    ]
    assert main(args) == 0
    assert out.is_file() and significance_path(out).is_file()
    (runs[0] / "metrics.json").unlink()
    assert main(args) == 1
    assert str(runs[0] / "metrics.json") in capsys.readouterr().err
