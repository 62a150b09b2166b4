"""Our numbers beside the paper's Table 1: ``reports/table1.csv`` and ``reports/table1.md``.

One row per (dataset, backbone, method) present in the cell CSVs. Columns:
``dataset, backbone, method, n, ours, ci_low, ci_high, paper, delta, paper_in_ci,
mcnemar_p, note`` where ``ours``/``ci_*``/``paper``/``delta`` are percentages,
``delta = ours - paper`` in percentage points, ``paper_in_ci`` is true/false (empty without a
paper number) and ``note`` says "no paper number" for cells the paper does not report
(smoke backbones, new methods).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from parammem.report.runs import (
    BACKBONE_ORDER,
    DATASET_ORDER,
    METHOD_ORDER,
    ReportInputError,
    dataset_label,
    method_label,
    order_key,
)

NO_PAPER = "no paper number"
CELL_REQUIRED = ("dataset", "backbone", "method", "n", "accuracy", "ci_low", "ci_high")
TABLE1_COLUMNS = [
    "dataset",
    "backbone",
    "method",
    "n",
    "ours",
    "ci_low",
    "ci_high",
    "paper",
    "delta",
    "paper_in_ci",
    "mcnemar_p",
    "note",
]


def load_paper_table() -> pd.DataFrame:
    """The paper's Table 1 (score in %), shipped as ``parammem/report/paper_table1.csv``."""
    ref = resources.files("parammem.report").joinpath("paper_table1.csv")
    with ref.open("r") as fh:
        df = pd.read_csv(fh, dtype={"dataset": str, "method": str, "backbone": str, "score": float})
    return df


def read_cell(path: str | Path) -> pd.DataFrame:
    """Read one ``reports/<cell>.csv``; an empty or malformed file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"missing cell file {path}")
    try:
        df = pd.read_csv(path, dtype={"dataset": str, "backbone": str, "method": str})
    except pd.errors.EmptyDataError as exc:
        raise ReportInputError(f"cell file {path} is empty") from exc
    missing = [c for c in CELL_REQUIRED if c not in df.columns]
    if missing:
        raise ReportInputError(f"cell file {path} lacks column(s) {missing}")
    if df.empty:
        raise ReportInputError(f"cell file {path} has no rows")
    bad = df[(df["n"].isna()) | (df["n"] <= 0)]
    if len(bad):
        raise ReportInputError(
            f"cell file {path}: method {bad['method'].iloc[0]!r} has zero problems"
        )
    df["cell_file"] = str(path)
    return df


def read_cells(paths: Sequence[str | Path]) -> pd.DataFrame:
    if not paths:
        raise ReportInputError("no cell CSVs given")
    cells = pd.concat([read_cell(p) for p in paths], ignore_index=True)
    dup = cells.duplicated(["dataset", "backbone", "method"], keep=False)
    if dup.any():
        row = cells[dup].iloc[0]
        files = sorted(set(cells[dup]["cell_file"]))
        raise ReportInputError(
            f"({row['dataset']}, {row['backbone']}, {row['method']}) appears more than once "
            f"in {files}"
        )
    return sort_rows(cells)


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    keys = (
        df["dataset"].map(order_key(DATASET_ORDER)),
        df["backbone"].map(order_key(BACKBONE_ORDER)),
        df["method"].map(order_key(METHOD_ORDER)),
    )
    idx = sorted(range(len(df)), key=lambda i: tuple(k.iloc[i] for k in keys))
    return df.iloc[idx].reset_index(drop=True)


def build_table1(cells: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Merge our cells with the paper's numbers (see module docstring for columns)."""
    paper = load_paper_table() if paper is None else paper
    merged = cells.merge(
        paper.rename(columns={"score": "paper"}),
        on=["dataset", "backbone", "method"],
        how="left",
    )
    out = pd.DataFrame(
        {
            "dataset": merged["dataset"],
            "backbone": merged["backbone"],
            "method": merged["method"],
            "n": merged["n"].astype(int),
            "ours": 100 * merged["accuracy"],
            "ci_low": 100 * merged["ci_low"],
            "ci_high": 100 * merged["ci_high"],
            "paper": merged["paper"].astype(float),
        }
    )
    out["delta"] = out["ours"] - out["paper"]
    has = out["paper"].notna()
    # tolerance: the paper prints two decimals
    inside = (out["paper"] >= out["ci_low"] - 5e-3) & (out["paper"] <= out["ci_high"] + 5e-3)
    out["paper_in_ci"] = pd.array(
        [bool(v) if h else pd.NA for v, h in zip(inside, has, strict=True)], dtype="boolean"
    )
    out["mcnemar_p"] = merged["mcnemar_p"] if "mcnemar_p" in merged else np.nan
    out["note"] = np.where(has, "", NO_PAPER)
    return sort_rows(out)[TABLE1_COLUMNS]


def _fmt(value, spec: str = ".2f", empty: str = "—") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return empty
    return format(value, spec)


def format_p(p) -> str:
    if p is None or p is pd.NA or (isinstance(p, float) and np.isnan(p)):
        return "—"
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def to_markdown(table: pd.DataFrame) -> str:
    """GitHub-flavoured markdown of ``build_table1`` output, one block per cell."""
    lines = [
        "# Reproduction of ParamMem Table 1",
        "",
        "Scores in %. CI: 95 % bootstrap over problems. Δ = ours − paper (points). "
        "p: exact McNemar vs ParamAgent on the same problems.",
        "",
    ]
    for (dataset, backbone), block in table.groupby(["dataset", "backbone"], sort=False):
        lines += [
            f"## {dataset_label(dataset)} · {backbone}",
            "",
            "| method | n | ours | 95% CI | paper | Δ | paper in CI | p vs ParamAgent |",
            "|---|--:|--:|--:|--:|--:|:-:|--:|",
        ]
        for _, r in block.iterrows():
            in_ci = r["paper_in_ci"]
            in_ci = "—" if in_ci is pd.NA else ("yes" if in_ci else "no")
            paper = _fmt(r["paper"], ".2f", NO_PAPER)
            delta = _fmt(r["delta"], "+.2f")
            lines.append(
                f"| {method_label(r['method'])} | {r['n']} | {r['ours']:.2f} | "
                f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] | {paper} | {delta} | {in_ci} | "
                f"{format_p(r['mcnemar_p'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def table1_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, float_format="%.4f")
