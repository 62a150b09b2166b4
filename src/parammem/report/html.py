"""``reports/index.html``: one self-contained page (CSS inline, plots as base64 PNGs).

``build_summary`` reads the cell CSVs (and their ``_significance.csv`` companions), builds
Table 1, draws the figures, and ``write_summary`` writes ``table1.csv``, ``table1.md``,
``index.html`` and ``plots/<name>.png`` (the same PNGs, for ``snakemake --report``).
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from parammem.report import figures
from parammem.report.cell import SIGNIFICANCE_COLUMNS, atomic_write_bytes, atomic_write_text
from parammem.report.cell import significance_path as _sig_path
from parammem.report.runs import (
    EPISODES,
    METRICS,
    ReportInputError,
    dataset_label,
    method_label,
)
from parammem.report.table1 import (
    NO_PAPER,
    build_table1,
    format_p,
    read_cells,
    sort_rows,
    table1_csv,
    to_markdown,
)


@dataclass
class Summary:
    cells: pd.DataFrame
    table1: pd.DataFrame
    significance: pd.DataFrame
    runs: pd.DataFrame  # provenance read from --runs-root (may be empty)
    plots: dict[str, bytes] = field(default_factory=dict)
    pearson: tuple[float, float, int] = (float("nan"), float("nan"), 0)


def read_significance(cell_paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate the ``_significance.csv`` companions that exist next to the cells."""
    frames = []
    for p in cell_paths:
        sp = _sig_path(p)
        if sp.is_file():
            try:
                df = pd.read_csv(sp, dtype={"dataset": str, "backbone": str, "method": str})
            except pd.errors.EmptyDataError as exc:
                raise ReportInputError(f"significance file {sp} is empty (no header)") from exc
            frames.append(df)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    return sort_rows(pd.concat(frames, ignore_index=True))


def read_runs(cells: pd.DataFrame, runs_root: str | Path | None) -> pd.DataFrame:
    """Per-run provenance (status counts, max iterations) from the run directories.

    The run of a row is ``<runs_root>/<backbone>/<dataset>/<method>``, else the cell's
    ``run_dir`` column. With ``runs_root`` given, a run without metrics.json raises.
    """
    if runs_root is None:
        return pd.DataFrame()
    rows = []
    for _, r in cells.iterrows():
        run = Path(runs_root) / r["backbone"] / r["dataset"] / r["method"]
        if not (run / METRICS).is_file() and isinstance(r.get("run_dir"), str):
            alt = Path(r["run_dir"])
            run = alt if (alt / METRICS).is_file() else run
        if not (run / METRICS).is_file():
            raise ReportInputError(
                f"missing metrics file {run / METRICS} for ({r['dataset']}, {r['backbone']}, "
                f"{r['method']}) listed in {r['cell_file']}"
            )
        status, max_iters = "", np.nan
        ep_path = run / EPISODES
        if ep_path.is_file():
            cols = ["status", "passed_by_iteration"]
            try:
                ep = pd.read_parquet(ep_path)
            except Exception as exc:  # noqa: BLE001
                raise ReportInputError(f"cannot read {ep_path}: {exc}") from exc
            if "status" in ep:
                counts = ep["status"].astype(str).value_counts().sort_index()
                status = " · ".join(f"{k} {v}" for k, v in counts.items())
            if cols[1] in ep and ep[cols[1]].notna().all() and len(ep):
                max_iters = max(len(x) for x in ep[cols[1]])
        rows.append(
            {
                "dataset": r["dataset"],
                "backbone": r["backbone"],
                "method": r["method"],
                "run_dir": str(run),
                "status": status,
                "max_iters": max_iters,
            }
        )
    return pd.DataFrame(rows)


def build_summary(cell_paths: Sequence[str | Path], runs_root: str | Path | None = None) -> Summary:
    cells = read_cells(cell_paths)
    table1 = build_table1(cells)
    sig = read_significance(cell_paths)
    runs = read_runs(cells, runs_root)
    div_png, r = figures.diversity_vs_accuracy(cells)
    plots = {
        "accuracy_by_iteration": figures.accuracy_by_iteration(cells),
        "diversity_vs_accuracy": div_png,
        "token_cost": figures.token_cost(cells),
        "ours_vs_paper": figures.ours_vs_paper(table1),
    }
    return Summary(cells, table1, sig, runs, plots, r)


# --- HTML ---------------------------------------------------------------------------


def _is_nan(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _f(v, spec=".2f", empty="—") -> str:
    return empty if _is_nan(v) else format(v, spec)


def _table_groups(summary: Summary) -> list[dict]:
    cells = summary.cells.set_index(["dataset", "backbone", "method"])
    groups = []
    for (dataset, backbone), block in summary.table1.groupby(["dataset", "backbone"], sort=False):
        best = block["ours"].max()
        rows = []
        for _, t in block.iterrows():
            c = cells.loc[(dataset, backbone, t["method"])]
            has_paper = not _is_nan(t["paper"])
            delta = t["delta"]
            in_ci = None if t["paper_in_ci"] is pd.NA else bool(t["paper_in_ci"])
            delta_cls = "na" if not has_paper else ("pos" if delta >= 0 else "neg")
            rows.append(
                {
                    "method": method_label(t["method"]),
                    "key": t["method"],
                    "n": int(t["n"]),
                    "ours": _f(t["ours"]),
                    "best": bool(np.isclose(t["ours"], best)),
                    "ci": f"{t['ci_low']:.1f}–{t['ci_high']:.1f}",
                    "paper": _f(t["paper"]) if has_paper else NO_PAPER,
                    "has_paper": has_paper,
                    "delta": _f(delta, "+.2f") if has_paper else "",
                    "delta_cls": delta_cls,
                    "in_ci": in_ci,
                    "p": format_p(t["mcnemar_p"]),
                    "p_sig": (not _is_nan(t["mcnemar_p"])) and t["mcnemar_p"] < 0.05,
                    "diversity": _f(c.get("diversity"), ".3f"),
                    "iters": _f(c.get("mean_iterations"), ".2f"),
                    "tokens": _f(c.get("tokens_per_problem"), ",.0f"),
                }
            )
        groups.append(
            {
                "title": f"{dataset_label(dataset)} · {backbone}",
                "id": f"{dataset}_{backbone}",
                "rows": rows,
            }
        )
    return groups


def _sig_rows(summary: Summary) -> list[dict]:
    out = []
    for _, s in summary.significance.iterrows():
        out.append(
            {
                "cell": f"{dataset_label(s['dataset'])} · {s['backbone']}",
                "reference": method_label(s["reference"]),
                "method": method_label(s["method"]),
                "n": int(s["n_paired"]),
                "ref_only": int(s["reference_only"]),
                "method_only": int(s["method_only"]),
                "delta": _f(100 * s["delta"], "+.2f"),
                "delta_cls": "pos" if s["delta"] > 0 else ("neg" if s["delta"] < 0 else ""),
                "p": format_p(s["p_value"]),
                "p_holm": format_p(s["p_holm"]),
                "sig": bool(s["significant"]) if not _is_nan(s["significant"]) else False,
            }
        )
    return out


def _run_rows(summary: Summary) -> list[dict]:
    runs = {}
    if not summary.runs.empty:
        for _, r in summary.runs.iterrows():
            runs[(r["dataset"], r["backbone"], r["method"])] = r
    out = []
    for _, c in summary.cells.iterrows():
        extra = runs.get((c["dataset"], c["backbone"], c["method"]))
        hits, misses = c.get("cache_hits"), c.get("cache_misses")
        total = 0 if _is_nan(hits) or _is_nan(misses) else hits + misses
        run_dir = _str(extra["run_dir"] if extra is not None else c.get("run_dir"))
        parts = Path(run_dir).parts
        short = "…/" + str(Path(*parts[-3:])) if len(parts) > 3 else run_dir
        out.append(
            {
                "cell": f"{dataset_label(c['dataset'])} · {c['backbone']}",
                "method": method_label(c["method"]),
                "model": _str(c.get("model")),
                "wall": _f(c.get("wall_seconds"), ",.0f"),
                "gpu": _f(c.get("gpu_seconds"), ",.0f"),
                "cache": f"{100 * hits / total:.0f}%" if total else "—",
                "status": _str(extra["status"]) if extra is not None else "",
                "embedder": _str(c.get("embedder")),
                "run_dir": run_dir,
                "run_dir_short": short,
            }
        )
    return out


def _str(v) -> str:
    return v if isinstance(v, str) else ""


def render_html(summary: Summary, title: str = "ParamMem reproduction report") -> str:
    import jinja2

    source = resources.files("parammem.report").joinpath("index.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(source)
    r, p, n = summary.pearson
    t1 = summary.table1
    with_paper = t1[t1["paper"].notna()]
    n_boot = summary.cells["ci_n_boot"].dropna().unique() if "ci_n_boot" in summary.cells else []
    return template.render(
        title=title,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        n_cells=t1.groupby(["dataset", "backbone"]).ngroups,
        n_runs=len(t1),
        n_with_paper=len(with_paper),
        n_in_ci=int(with_paper["paper_in_ci"].fillna(False).astype(bool).sum()),
        mean_abs_delta=_f(with_paper["delta"].abs().mean()) if len(with_paper) else "—",
        groups=_table_groups(summary),
        figures=figures.FIGURES,
        plots={k: base64.b64encode(v).decode("ascii") for k, v in summary.plots.items()},
        pearson_r=_f(r),
        pearson_p=format_p(p),
        pearson_n=n,
        significance=_sig_rows(summary),
        runs=_run_rows(summary),
        n_boot=", ".join(str(int(b)) for b in n_boot) or "—",
    )


def write_summary(summary: Summary, out_dir: str | Path) -> dict[str, Path]:
    """Write table1.csv, table1.md, index.html and plots/*.png under ``out_dir``."""
    out_dir = Path(out_dir)
    paths = {
        "table1_csv": out_dir / "table1.csv",
        "table1_md": out_dir / "table1.md",
        "index_html": out_dir / "index.html",
    }
    atomic_write_text(paths["table1_csv"], table1_csv(summary.table1))
    atomic_write_text(paths["table1_md"], to_markdown(summary.table1))
    for name, png in summary.plots.items():
        paths[f"plot_{name}"] = out_dir / "plots" / f"{name}.png"
        atomic_write_bytes(paths[f"plot_{name}"], png)
    atomic_write_text(paths["index_html"], render_html(summary))
    return paths
