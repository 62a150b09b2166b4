"""One cell's table: ``reports/<dataset>_<backbone>.csv``, one row per method.

Columns (accuracies are fractions in [0, 1]; token counts are totals over the cell):

======================  ==================================================================
dataset, backbone       the cell (all runs of a cell must agree)
method, model           the run's method and backbone model id (from metrics.json)
n                       problems in the run
accuracy                mean final hidden grade (``episodes.passed``)
ci_low, ci_high         95 % percentile bootstrap CI of accuracy, resampling problems
                        (``n_boot`` resamples, seeded RNG; see ``ci_*`` provenance columns)
mean_iterations         mean ``iterations_used``
solved_by_iter_<k>      accuracy of the current answer after iteration k (k = 1..K, K the
                        cell's longest run; shorter runs are carried forward)
prompt_tokens,          total tokens of the run (metrics.json)
completion_tokens
tokens_per_problem      (prompt + completion) / n
wall_seconds            run wall time; gpu_seconds: GPU time, empty where unknown (CPU)
cache_hits,             response-cache hits / misses
cache_misses
diversity               mean over problems of the mean pairwise cosine distance between the
                        embeddings of a problem's reflections (roles reflect, parammem);
                        empty when no problem has two reflections (e.g. base)
diversity_problems      problems entering that mean; n_reflections: reflections in the run
embedder                the embedding model used for diversity
paired_reference        the method every other row is tested against (default paramagent);
                        empty when the cell has no such run
mcnemar_p               exact McNemar p-value of paired_reference vs this method on the
                        problems both solved or failed (empty on the reference row)
ci_n_boot, ci_seed      bootstrap provenance
run_dir                 the run directory the row was built from
======================  ==================================================================

The paired tests in full go to the companion file ``<stem>_significance.csv`` written next
to the cell CSV (columns in ``SIGNIFICANCE_COLUMNS``; a header-only file when the cell has
no reference run or no other method).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from parammem.analysis.diversity import run_diversity
from parammem.analysis.stats import DEFAULT_N_BOOT, DEFAULT_SEED, bootstrap_ci, mcnemar_paired
from parammem.report.runs import METHOD_ORDER, ReportInputError, RunData, load_run, order_key

DEFAULT_REFERENCE = "paramagent"
BASE_COLUMNS = [
    "dataset",
    "backbone",
    "method",
    "model",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "mean_iterations",
]
TAIL_COLUMNS = [
    "prompt_tokens",
    "completion_tokens",
    "tokens_per_problem",
    "wall_seconds",
    "gpu_seconds",
    "cache_hits",
    "cache_misses",
    "diversity",
    "diversity_problems",
    "n_reflections",
    "embedder",
    "paired_reference",
    "mcnemar_p",
    "ci_n_boot",
    "ci_seed",
    "run_dir",
]
SIGNIFICANCE_COLUMNS = [
    "dataset",
    "backbone",
    "reference",
    "method",
    "n_paired",
    "both_correct",
    "reference_only",
    "method_only",
    "neither",
    "reference_accuracy",
    "method_accuracy",
    "delta",
    "p_value",
    "p_holm",
    "significant",
    "test",
]


@dataclass
class CellResult:
    table: pd.DataFrame
    significance: pd.DataFrame


def solved_by_iteration(run: RunData) -> list[float]:
    """Accuracy after each iteration, from ``episodes.passed_by_iteration`` (else metrics)."""
    ep = run.episodes
    if "passed_by_iteration" in ep.columns and ep["passed_by_iteration"].notna().all():
        lists = [[bool(v) for v in seq] for seq in ep["passed_by_iteration"]]
        k_max = max((len(s) for s in lists), default=0)
        if k_max:
            padded = np.array(
                [
                    (s + [s[-1]] * (k_max - len(s))) if s else [p] * k_max
                    for s, p in zip(lists, ep["passed"], strict=True)
                ],
                dtype=float,
            )
            return padded.mean(axis=0).tolist()
    sbi = run.metrics.get("solved_by_iteration")
    if sbi:
        return [float(v) for v in sbi]
    return [float(ep["passed"].mean())]


def _num(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _total(run: RunData, key: str) -> float:
    if run.metrics.get(key) is not None:
        return _num(run.metrics[key])
    if key in run.episodes.columns:
        return float(pd.to_numeric(run.episodes[key], errors="coerce").sum())
    return float("nan")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()


def _check_runs(runs: list[RunData]) -> None:
    cells = {(r.dataset, r.backbone) for r in runs}
    if len(cells) > 1:
        listing = ", ".join(f"{r.path} ({r.dataset}/{r.backbone})" for r in runs)
        raise ReportInputError(f"runs of one cell disagree on dataset/backbone: {listing}")
    seen: dict[str, Path] = {}
    for r in runs:
        if r.method in seen:
            raise ReportInputError(
                f"method {r.method!r} appears twice in the cell: {seen[r.method]} and {r.path}"
            )
        seen[r.method] = r.path


def build_cell(
    run_dirs: Sequence[str | Path],
    *,
    embedder=None,
    diversity: bool = True,
    reference: str = DEFAULT_REFERENCE,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
) -> CellResult:
    """Build a cell's table and its paired-significance table from run directories.

    ``embedder``: an object with ``encode(list[str])`` (default: ``Embedder()``), used
    only when ``diversity`` is true.
    """
    if not run_dirs:
        raise ReportInputError("no run directories given for the cell")
    runs = [load_run(d, need_trajectory=diversity) for d in run_dirs]
    _check_runs(runs)
    runs.sort(key=lambda r: order_key(METHOD_ORDER)(r.method))
    if diversity and embedder is None:
        from parammem.embeddings import Embedder

        embedder = Embedder()
    embedder_name = getattr(embedder, "name", type(embedder).__name__) if diversity else ""

    curves = {r.method: solved_by_iteration(r) for r in runs}
    k_max = max(len(c) for c in curves.values())
    ref = next((r for r in runs if r.method == reference), None)

    rows, sig_rows = [], []
    for run in runs:
        passed = run.episodes["passed"].to_numpy(dtype=float)
        n = len(passed)
        lo, hi = bootstrap_ci(passed, n_boot=n_boot, seed=seed)
        curve = curves[run.method]
        curve = curve + [curve[-1]] * (k_max - len(curve))
        if "iterations_used" in run.episodes.columns:
            mean_iters = float(pd.to_numeric(run.episodes["iterations_used"]).mean())
        else:
            mean_iters = _num(run.metrics.get("mean_iterations"))
        prompt, completion = _total(run, "prompt_tokens"), _total(run, "completion_tokens")
        if diversity:
            div = run_diversity(run.trajectory, embedder)
            div_mean, div_n, n_refl = div.mean, div.n_problems, div.n_reflections
        else:
            div_mean, div_n, n_refl = float("nan"), 0, 0

        row = {
            "dataset": run.dataset,
            "backbone": run.backbone,
            "method": run.method,
            "model": run.metrics.get("model") or "",
            "n": n,
            "accuracy": float(passed.mean()),
            "ci_low": lo,
            "ci_high": hi,
            "mean_iterations": mean_iters,
        }
        row |= {f"solved_by_iter_{k + 1}": v for k, v in enumerate(curve)}
        row |= {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "tokens_per_problem": (prompt + completion) / n,
            "wall_seconds": _num(run.metrics.get("wall_seconds")),
            "gpu_seconds": _num(run.metrics.get("gpu_seconds")),
            "cache_hits": _num(run.metrics.get("cache_hits")),
            "cache_misses": _num(run.metrics.get("cache_misses")),
            "diversity": div_mean,
            "diversity_problems": div_n,
            "n_reflections": n_refl,
            "embedder": embedder_name,
            "paired_reference": reference if ref is not None else "",
            "mcnemar_p": float("nan"),
            "ci_n_boot": n_boot,
            "ci_seed": seed,
            "run_dir": str(run.path),
        }
        if ref is not None and run is not ref:
            res = mcnemar_paired(
                ref.episodes.set_index("problem_id")["passed"],
                run.episodes.set_index("problem_id")["passed"],
            )
            if res.n_paired == 0:
                raise ReportInputError(
                    f"{run.path / 'episodes.parquet'} shares no problem_id with "
                    f"{ref.path / 'episodes.parquet'}"
                )
            row["mcnemar_p"] = res.p_value
            sig_rows.append(
                {
                    "dataset": run.dataset,
                    "backbone": run.backbone,
                    "reference": reference,
                    "method": run.method,
                    "n_paired": res.n_paired,
                    "both_correct": res.both_correct,
                    "reference_only": res.a_only,
                    "method_only": res.b_only,
                    "neither": res.neither,
                    "reference_accuracy": res.accuracy_a,
                    "method_accuracy": res.accuracy_b,
                    "delta": res.accuracy_a - res.accuracy_b,
                    "p_value": res.p_value,
                    "test": "mcnemar_exact",
                }
            )
        rows.append(row)

    table = pd.DataFrame(rows)
    iter_cols = [f"solved_by_iter_{k + 1}" for k in range(k_max)]
    table = table[BASE_COLUMNS + iter_cols + TAIL_COLUMNS]
    # readable CSV: fractions to 6 decimals, counts as (nullable) integers; p-values exact
    rounded = [
        "accuracy",
        "ci_low",
        "ci_high",
        "mean_iterations",
        *iter_cols,
        "tokens_per_problem",
        "wall_seconds",
        "gpu_seconds",
        "diversity",
    ]
    table[rounded] = table[rounded].astype(float).round(6)
    for col in ("prompt_tokens", "completion_tokens", "cache_hits", "cache_misses"):
        vals = table[col].astype(float)
        if (vals.dropna() % 1 == 0).all():
            table[col] = vals.round().astype("Int64")
    sig = pd.DataFrame(sig_rows, columns=[c for c in SIGNIFICANCE_COLUMNS])
    if len(sig):
        sig["p_holm"] = holm(sig["p_value"].tolist())
        sig["significant"] = sig["p_holm"] < 0.05
    sig = sig[SIGNIFICANCE_COLUMNS]
    return CellResult(table, sig)


def significance_path(cell_csv: str | Path) -> Path:
    """``reports/<cell>.csv`` -> ``reports/<cell>_significance.csv``."""
    cell_csv = Path(cell_csv)
    return cell_csv.with_name(f"{cell_csv.stem}_significance.csv")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same directory, then rename (umask permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_cell(result: CellResult, out: str | Path) -> tuple[Path, Path]:
    """Write the cell CSV and its ``_significance.csv`` companion; returns both paths."""
    out = Path(out)
    sig_out = significance_path(out)
    atomic_write_text(out, result.table.to_csv(index=False))
    atomic_write_text(sig_out, result.significance.to_csv(index=False))
    return out, sig_out
