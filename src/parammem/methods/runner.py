"""Drive a method over a cell's problems: lockstep chunks, hidden grades per iteration,
resumable outputs (see store.py and docs/design.md for the files)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from parammem.config import STAGE1_OF, uses_parammem
from parammem.methods.core import Context, Episode, Settings
from parammem.methods.registry import make_method
from parammem.methods.store import RunStore
from parammem.tasks.base import Problem

log = logging.getLogger(__name__)


def run_loop(method, ctx: Context, episodes: list[Episode], max_iters: int) -> None:
    """Iteration 1 = `start`; then `step` on the live episodes until all stop or max_iters.
    After every iteration the hidden grade of each current answer is recorded."""
    method.start(ctx, episodes)
    for e in episodes:
        e.iterations = 1
    _record(ctx, episodes)
    for it in range(2, max_iters + 1):
        live = [e for e in episodes if not e.done]
        if not live:
            break
        method.step(ctx, live, it)
        for e in live:
            e.iterations = it
        _record(ctx, episodes)
    for e in episodes:  # an episode that stopped keeps its answer for the remaining iterations
        e.passed_by_iteration += [e.passed_by_iteration[-1]] * (
            max_iters - len(e.passed_by_iteration)
        )


def _record(ctx: Context, episodes: list[Episode]) -> None:
    for e, passed in zip(episodes, ctx.grade_current(episodes), strict=True):
        e.passed_by_iteration.append(passed)


def task_for(config: dict[str, Any], dataset: str, workers: int = 1):
    from parammem.tasks import UnknownTaskOption, get_task

    options = dict((config.get("dataset_options") or {}).get(dataset) or {})
    options.pop("limit", None)
    options.pop("task_ids", None)
    if config.get("data_dir"):
        options["data_dir"] = config["data_dir"]
    try:
        return get_task(dataset, workers=max(1, workers), **options)
    except UnknownTaskOption as exc:
        raise ValueError(f"dataset_options.{dataset}: {exc}") from None


def eval_problems(config: dict[str, Any], task, dataset: str) -> list[Problem]:
    """The evaluated problems: `dataset_options.<dataset>.task_ids` (in that order) if given,
    else all; then the first `limit`."""
    opts = (config.get("dataset_options") or {}).get(dataset) or {}
    ids, limit = opts.get("task_ids"), opts.get("limit")
    if not ids:
        return task.load(limit=limit)
    by_id = {p.task_id: p for p in task.load()}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(
            f"dataset_options.{dataset}.task_ids: {missing[:5]} not among the {len(by_id)} "
            f"{dataset} problems (ids look like {next(iter(by_id), '?')!r})"
        )
    return [by_id[i] for i in dict.fromkeys(ids)][:limit]


def run_cell(
    config: dict[str, Any],
    *,
    backbone: str,
    dataset: str,
    method: str,
    out_dir: str | Path,
    stage1: str | None = None,
    parammem_samples: str | None = None,
    retro_adapter: str | None = None,
    workers: int = 1,
    backend=None,
    task=None,
) -> dict[str, Any]:
    """Evaluate one (backbone, dataset, method); returns the metrics written. `backend` and
    `task` default to the ones the config names (tests inject fakes)."""
    settings = Settings.from_config(config)
    task = task or task_for(config, dataset, workers)
    problems = eval_problems(config, task, dataset)
    if not problems:
        raise ValueError(
            f"dataset {dataset!r} yielded no problems; check dataset_options.{dataset}"
        )
    cell = {"method": method, "dataset": dataset, "backbone": backbone}
    store = RunStore(out_dir)
    done = store.done_ids()
    todo = [p for p in problems if p.task_id not in done]
    log.info("%s: %d problems, %d already done", cell, len(problems), len(done))

    two_stage = method in STAGE1_OF
    stage1_eps = stage1_traj = None
    stage1_wall = 0.0
    if two_stage:
        if not stage1:
            raise ValueError(f"{method} needs the stage-1 run of {STAGE1_OF[method]} (stage1=...)")
        run1 = Path(stage1)
        run1 = run1.parent if run1.name == "metrics.json" else run1  # the run dir or its metrics
        stage1_eps, stage1_traj, stage1_wall = _load_stage1(run1, problems)
    parammem = None
    if uses_parammem(method):
        from parammem.memory.parametric import ParamMemReader

        if not parammem_samples:
            raise ValueError(f"{method} needs ParamMem samples (parammem_samples=...)")
        parammem = ParamMemReader(pd.read_parquet(parammem_samples))

    counters = {"hits": 0, "misses": 0}
    if todo:
        if backend is None:
            from parammem.engine import open_backend

            backend = open_backend(config, backbone)
        reflect_backend = backend
        if method == "retroformer":
            from parammem.config import retro_reflector_for

            alias = retro_reflector_for(config, backbone)
            if alias != backbone:
                from parammem.engine import open_backend

                reflect_backend = open_backend(config, alias)
        bank = _build_bank(config, task, problems, stage1_eps, stage1_traj) if two_stage else None
        hits0, misses0 = getattr(backend, "hits", 0), getattr(backend, "misses", 0)
        for start in range(0, len(todo), settings.chunk_size):
            chunk = todo[start : start + settings.chunk_size]
            t0 = time.perf_counter()
            ctx = Context(
                task,
                backend,
                settings,
                cell,
                reflect_backend=reflect_backend,
                reflect_adapter=retro_adapter,
                parammem=parammem,
                bank=bank,
                stage=2 if two_stage else 1,
                iteration_offset=settings.max_iters if two_stage else 0,
            )
            if two_stage:
                records, rows = _run_stage2(method, ctx, chunk, stage1_eps, stage1_traj, settings)
            else:
                episodes = [Episode(p) for p in chunk]
                run_loop(make_method(method), ctx, episodes, settings.max_iters)
                records, rows = _records(ctx, episodes), ctx.rows
            _mark_hidden(ctx, rows)
            wall = time.perf_counter() - t0
            for r in records:
                r["chunk_seconds"] = wall / len(records)
            store.write_chunk(records, rows)
            log.info("chunk of %d done in %.1fs", len(chunk), wall)
        counters = {
            "hits": getattr(backend, "hits", 0) - hits0,
            "misses": getattr(backend, "misses", 0) - misses0,
        }

    episodes_df, traj = store.load()
    metrics = _metrics(config, cell, episodes_df, traj, stage1_wall, counters, settings)
    store.finalize([p.task_id for p in problems], metrics)
    return metrics


def _records(ctx: Context, episodes: list[Episode]) -> list[dict[str, Any]]:
    grades = ctx.final_grades(episodes)
    out = []
    for e, g in zip(episodes, grades, strict=True):
        rows = [r for r in ctx.rows if r["problem_id"] == e.task_id]
        out.append(
            {
                "problem_id": e.task_id,
                "passed": bool(g.passed),
                "status": g.status,
                "reason": g.reason,
                "iterations_used": e.iterations,
                "passed_by_iteration": [bool(x) for x in e.passed_by_iteration],
                "visible_passed": bool(e.feedback.passed) if e.feedback else None,
                "final_attempt": e.attempt,
                "final_response": e.response,
                "stage": ctx.stage,
                "prompt_tokens": int(sum(r["prompt_tokens"] for r in rows)),
                "completion_tokens": int(sum(r["completion_tokens"] for r in rows)),
                "seconds": float(sum(r["seconds"] for r in rows)),
            }
        )
    return out


def _mark_hidden(ctx: Context, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["role"] == "solve" and r.get("attempt") is not None and r.get("hidden_passed") is None:
            r["hidden_passed"] = ctx._hidden.get((r["problem_id"], r["attempt"]))


def _load_stage1(run: Path, problems: list[Problem]):
    for name in ("episodes.parquet", "trajectory.parquet", "metrics.json"):
        if not (run / name).exists():
            raise FileNotFoundError(f"stage-1 run {run} has no {name}; run that method first")
    eps = pd.read_parquet(run / "episodes.parquet").set_index("problem_id", drop=False)
    missing = [p.task_id for p in problems if p.task_id not in eps.index]
    if missing:
        raise ValueError(
            f"stage-1 run {run} lacks {len(missing)} problems of this cell, e.g. "
            f"{missing[:3]}; it was run on a different problem set"
        )
    traj = pd.read_parquet(run / "trajectory.parquet")
    wall = json.loads((run / "metrics.json").read_text()).get("wall_seconds", 0.0)
    return eps, traj, wall


def _build_bank(config, task, problems, stage1_eps: pd.DataFrame, stage1_traj: pd.DataFrame):
    from parammem.embeddings import Embedder
    from parammem.memory.bank import MemoryBank, SolvedExample, TrajectoryExample

    text = {p.task_id: p.prompt for p in problems}
    solution_col = "final_response" if task.domain == "math" else "final_attempt"
    solved = [
        SolvedExample(r.problem_id, text[r.problem_id], getattr(r, solution_col) or "")
        for r in stage1_eps.itertuples()
        if r.visible_passed
    ]
    steps = stage1_traj[
        (stage1_traj["role"] == "solve")
        & stage1_traj["reflection"].notna()
        & stage1_traj.get("prev_attempt", pd.Series(dtype=object)).notna()
    ]
    fixed = steps[steps["visible_score"] >= 1.0]
    steps = fixed if len(fixed) else steps  # prefer reflections that led to a fix
    trajectories = [
        TrajectoryExample(
            r.problem_id, r.prev_attempt, r.prev_feedback or "", r.reflection, r.attempt or ""
        )
        for r in steps.itertuples()
    ]
    embedder = Embedder((config.get("bank") or {}).get("embedder"))
    log.info("memory bank: %d solved problems, %d trajectories", len(solved), len(trajectories))
    return MemoryBank(embedder, solved, trajectories)


def _run_stage2(
    method: str,
    ctx: Context,
    chunk: list[Problem],
    stage1_eps: pd.DataFrame,
    stage1_traj: pd.DataFrame,
    settings: Settings,
):
    """Stage-1 successes keep their result; failures (visible checks never passed) rerun."""
    retry = [p for p in chunk if not stage1_eps.loc[p.task_id, "visible_passed"]]
    episodes = [Episode(p) for p in retry]
    if episodes:
        run_loop(make_method(method), ctx, episodes, settings.max_iters)
    new = {r["problem_id"]: r for r in _records(ctx, episodes)}
    records = []
    for p in chunk:
        s1 = stage1_eps.loc[p.task_id].to_dict()
        s1_pbi = list(s1["passed_by_iteration"])
        if p.task_id in new:
            r = new[p.task_id]
            r["passed_by_iteration"] = s1_pbi + r["passed_by_iteration"]
            r["iterations_used"] += int(s1["iterations_used"])
            for k in ("prompt_tokens", "completion_tokens", "seconds"):
                r[k] += s1[k]
        else:
            r = {k: s1[k] for k in s1 if k != "chunk_seconds"}
            r["passed_by_iteration"] = s1_pbi + [s1_pbi[-1]] * settings.max_iters
        records.append(r)
    ids = {p.task_id for p in chunk}
    carried = stage1_traj[stage1_traj["problem_id"].isin(ids)].assign(method=method)
    return records, carried.to_dict("records") + ctx.rows


def _metrics(
    config,
    cell,
    episodes: pd.DataFrame,
    traj: pd.DataFrame,
    stage1_wall: float,
    counters: dict[str, int],
    settings: Settings,
) -> dict[str, Any]:
    n = len(episodes)
    pbi = pd.DataFrame(episodes["passed_by_iteration"].tolist()) if n else pd.DataFrame()
    wall = float(episodes["chunk_seconds"].sum()) + stage1_wall if n else 0.0
    gpus = config["backbones"][cell["backbone"]].get("gpus", 1)
    on_gpu = _cuda_available()
    return {
        **cell,
        "model": config["backbones"][cell["backbone"]]["model"],
        "engine": config.get("engine"),
        "n": n,
        "accuracy": float(episodes["passed"].mean()) if n else 0.0,
        "solved_by_iteration": [float(x) for x in pbi.mean(axis=0)] if n else [],
        "mean_iterations": float(episodes["iterations_used"].mean()) if n else 0.0,
        "prompt_tokens": int(traj["prompt_tokens"].sum()) if len(traj) else 0,
        "completion_tokens": int(traj["completion_tokens"].sum()) if len(traj) else 0,
        "calls": int(len(traj)),
        "wall_seconds": wall,
        "gpu_seconds": wall * max(gpus, 1) if on_gpu else None,
        "cache_hits": counters["hits"],
        "cache_misses": counters["misses"],
        "max_iters": settings.max_iters,
        "seed": settings.seed,
    }


def _cuda_available() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", "") in ("", "-1"):
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - no torch, no GPU accounting
        return False
