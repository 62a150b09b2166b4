"""Matplotlib figures of the summary report, returned as PNG bytes.

Uses ``matplotlib.figure.Figure`` directly (no pyplot, no GUI backend). Every function
returns a figure even without data (then it says so), so the report always has the same
set of plots.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from parammem.analysis.stats import pearson
from parammem.report.runs import METHOD_ORDER, dataset_label, method_label, order_key

FIGURES = {
    "accuracy_by_iteration": "Accuracy by iteration",
    "diversity_vs_accuracy": "Reflection diversity vs accuracy",
    "token_cost": "Token cost per method",
    "ours_vs_paper": "Ours vs paper",
}
_PALETTE = {
    "base": "#8c8c8c",
    "reflexion": "#1f77b4",
    "retroformer": "#9467bd",
    "dot": "#ff7f0e",
    "dot_bank": "#8c564b",
    "paramagent": "#d62728",
    "paramagent_plus": "#e377c2",
    "memgen": "#2ca02c",
    "tmem": "#17becf",
}
_EXTRA = ["#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_INK = "#1f2933"
_GRID = "#d9dee3"


def method_colors(methods) -> dict[str, str]:
    colors, extra = {}, iter(_EXTRA * 4)
    for m in sorted(set(methods), key=order_key(METHOD_ORDER)):
        colors[m] = _PALETTE.get(m) or next(extra)
    return colors


def _style(ax) -> None:
    ax.grid(True, color=_GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9aa5b1")
    ax.tick_params(colors=_INK, labelsize=9)
    ax.xaxis.label.set_color(_INK)
    ax.yaxis.label.set_color(_INK)
    ax.title.set_color(_INK)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _empty(message: str, size=(8, 2.2)) -> bytes:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#616e7c", fontsize=12)
    return _png(fig)


def _cell_grid(n_cells: int, row_height: float = 3.0):
    ncols = min(3, max(1, n_cells))
    nrows = math.ceil(n_cells / ncols)
    fig = Figure(figsize=(3.9 * ncols + 0.4, row_height * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_cells:]:
        ax.set_visible(False)
    return fig, axes


def _method_legend(fig: Figure, colors: dict[str, str], marker: str | None = "o") -> None:
    handles = [
        Line2D([], [], color=c, marker=marker, linewidth=2 if marker else 8, label=method_label(m))
        for m, c in colors.items()
    ]
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncol=min(len(handles), 9),
        frameon=False,
        fontsize=9,
    )


def _cells(df: pd.DataFrame):
    return list(df.groupby(["dataset", "backbone"], sort=False))


def accuracy_by_iteration(cells: pd.DataFrame) -> bytes:
    """One panel per cell: accuracy (%) of the current answer after iteration k, per method."""
    iter_cols = sorted(
        (c for c in cells.columns if c.startswith("solved_by_iter_")),
        key=lambda c: int(c.rsplit("_", 1)[1]),
    )
    if cells.empty or not iter_cols:
        return _empty("No per-iteration results")
    colors = method_colors(cells["method"])
    groups = _cells(cells)
    fig, axes = _cell_grid(len(groups))
    for ax, ((dataset, backbone), block) in zip(axes, groups, strict=False):
        for _, r in block.iterrows():
            ys = 100 * r[iter_cols].astype(float).to_numpy()
            xs = np.arange(1, len(ys) + 1)
            ok = np.isfinite(ys)
            lw = 2.4 if r["method"].startswith("paramagent") else 1.6
            ax.plot(xs[ok], ys[ok], marker="o", ms=4, lw=lw, color=colors[r["method"]])
        ax.set_title(f"{dataset_label(dataset)} · {backbone}", fontsize=10, fontweight="bold")
        ax.set_xlabel("iteration")
        ax.set_ylabel("accuracy (%)")
        ax.set_xticks(np.arange(1, len(iter_cols) + 1))
        _style(ax)
    _method_legend(fig, colors)
    return _png(fig)


def diversity_vs_accuracy(cells: pd.DataFrame) -> tuple[bytes, tuple[float, float, int]]:
    """Scatter of run diversity vs accuracy over all (cell, method) with a Pearson r."""
    df = cells.copy()
    if "diversity" not in df:
        df["diversity"] = np.nan
    df = df[np.isfinite(df["diversity"].astype(float))]
    r, p, n = pearson(df["diversity"], 100 * df["accuracy"])
    if df.empty:
        return _empty("No run has two or more reflections per problem: no diversity to plot"), (
            r,
            p,
            n,
        )
    colors = method_colors(df["method"])
    datasets = sorted(df["dataset"].unique())
    markers = {d: _MARKERS[i % len(_MARKERS)] for i, d in enumerate(datasets)}
    fig = Figure(figsize=(8.0, 4.3), layout="constrained")
    ax = fig.add_subplot()
    for _, row in df.iterrows():
        ax.scatter(
            row["diversity"],
            100 * row["accuracy"],
            s=60,
            color=colors[row["method"]],
            marker=markers[row["dataset"]],
            edgecolor="white",
            linewidth=0.8,
            zorder=3,
        )
    if np.isfinite(r):
        x = df["diversity"].astype(float).to_numpy()
        slope, icept = np.polyfit(x, 100 * df["accuracy"].astype(float).to_numpy(), 1)
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, slope * xs + icept, color="#52606d", lw=1.2, ls="--", zorder=2)
    r_txt = f"Pearson r = {r:.2f} (n = {n})" if np.isfinite(r) else f"Pearson r: n/a (n = {n})"
    ax.set_title(r_txt, fontsize=11, fontweight="bold")
    ax.set_xlabel("mean pairwise cosine distance of a problem's reflections")
    ax.set_ylabel("accuracy (%)")
    _style(ax)
    handles = [
        Line2D([], [], ls="", marker="o", ms=7, color=c, label=method_label(m))
        for m, c in colors.items()
    ]
    handles += [
        Line2D([], [], ls="", marker=markers[d], ms=7, color="#52606d", label=dataset_label(d))
        for d in datasets
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _png(fig), (r, p, n)


def token_cost(cells: pd.DataFrame) -> bytes:
    """One panel per cell: prompt + completion tokens per problem, per method (stacked)."""
    if cells.empty:
        return _empty("No token counts")
    groups = _cells(cells)
    fig, axes = _cell_grid(
        len(groups), row_height=0.35 * cells.groupby(["dataset", "backbone"]).size().max() + 1.2
    )
    for ax, ((dataset, backbone), block) in zip(axes, groups, strict=False):
        block = block.iloc[::-1]
        labels = [method_label(m) for m in block["method"]]
        prompt = (block["prompt_tokens"] / block["n"]).astype(float).fillna(0).to_numpy()
        compl = (block["completion_tokens"] / block["n"]).astype(float).fillna(0).to_numpy()
        y = np.arange(len(block))
        ax.barh(y, prompt, color="#9fb3c8", label="prompt")
        ax.barh(y, compl, left=prompt, color="#334e68", label="completion")
        for yi, total in zip(y, prompt + compl, strict=True):
            ax.text(total, yi, f" {total:,.0f}", va="center", fontsize=8, color=_INK)
        ax.set_yticks(y, labels)
        ax.set_xlabel("tokens per problem")
        ax.set_xlim(0, max(1.0, float((prompt + compl).max())) * 1.22)
        ax.set_title(f"{dataset_label(dataset)} · {backbone}", fontsize=10, fontweight="bold")
        _style(ax)
        ax.grid(axis="y", visible=False)
    handles = [
        Line2D([], [], color="#9fb3c8", lw=8, label="prompt tokens"),
        Line2D([], [], color="#334e68", lw=8, label="completion tokens"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=2, frameon=False, fontsize=9)
    return _png(fig)


def ours_vs_paper(table1: pd.DataFrame) -> bytes:
    """Our accuracy (with 95 % CI) against the paper's Table 1 number, y = x for reference."""
    df = table1[table1["paper"].notna()]
    if df.empty:
        return _empty("None of these cells has a paper number (smoke backbone or new method)")
    colors = method_colors(df["method"])
    datasets = sorted(df["dataset"].unique())
    markers = {d: _MARKERS[i % len(_MARKERS)] for i, d in enumerate(datasets)}
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    lo = float(min(df["paper"].min(), df["ci_low"].min())) - 3
    hi = float(max(df["paper"].max(), df["ci_high"].max())) + 3
    lo, hi = max(lo, 0), min(hi, 100)
    ax.plot([lo, hi], [lo, hi], color="#9aa5b1", lw=1, ls="--", zorder=1)
    for _, r in df.iterrows():
        err = [[r["ours"] - r["ci_low"]], [r["ci_high"] - r["ours"]]]
        ax.errorbar(
            r["paper"],
            r["ours"],
            yerr=err,
            fmt=markers[r["dataset"]],
            color=colors[r["method"]],
            ms=7,
            mec="white",
            elinewidth=1.2,
            capsize=2,
            zorder=3,
        )
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("paper (%)")
    ax.set_ylabel("ours (%), 95% CI")
    inside = int(df["paper_in_ci"].fillna(False).astype(bool).sum())
    ax.set_title(f"paper number inside our CI: {inside} of {len(df)}", fontsize=11)
    _style(ax)
    handles = [
        Line2D([], [], ls="", marker="o", ms=7, color=c, label=method_label(m))
        for m, c in colors.items()
    ]
    handles += [
        Line2D([], [], ls="", marker=markers[d], ms=7, color="#52606d", label=dataset_label(d))
        for d in datasets
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _png(fig)
