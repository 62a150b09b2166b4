"""Read and validate one run directory (docs/design.md, "Run outputs").

Every problem with the inputs raises ``ReportInputError`` naming the offending file:
a report never shows a silent empty row.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from parammem.config import METHODS

METRICS = "metrics.json"
EPISODES = "episodes.parquet"
TRAJECTORY = "trajectory.parquet"
REQUIRED_METRICS = ("method", "dataset", "backbone", "n")
REQUIRED_EPISODES = ("problem_id", "passed")
REQUIRED_TRAJECTORY = ("problem_id", "role", "response")

# Canonical orders for tables and plots; anything else sorts after, alphabetically.
DATASET_ORDER = ("humaneval", "mbpp", "livecodebench", "math", "hotpotqa", "2wiki")
# The suite's methods in config order, then the paper-only rows of Table 1.
METHOD_ORDER = (*METHODS, "memgen", "tmem")
BACKBONE_ORDER = ("llama8b", "mistral7b", "qwen1.5b")
METHOD_LABELS = {
    "base": "Base",
    "reflexion": "Reflexion",
    "retroformer": "Retroformer",
    "dot": "DoT",
    "dot_bank": "DoT-bank",
    "paramagent": "ParamAgent",
    "paramagent_plus": "ParamAgent-plus",
    "memgen": "MemGen",
    "tmem": "TMEM",
}
DATASET_LABELS = {
    "humaneval": "HumanEval",
    "mbpp": "MBPP",
    "livecodebench": "LiveCodeBench",
    "math": "MATH",
    "hotpotqa": "HotpotQA",
    "2wiki": "2WikiMultiHopQA",
}


def order_key(order: tuple[str, ...]):
    """Sort key: position in ``order``, unknown names after it alphabetically."""
    return lambda name: (order.index(name), "") if name in order else (len(order), str(name))


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


class ReportInputError(ValueError):
    """Bad or missing run output; the message names the file."""


@dataclass
class RunData:
    path: Path
    metrics: dict
    episodes: pd.DataFrame
    trajectory: pd.DataFrame | None

    @property
    def method(self) -> str:
        return str(self.metrics["method"])

    @property
    def dataset(self) -> str:
        return str(self.metrics["dataset"])

    @property
    def backbone(self) -> str:
        return str(self.metrics["backbone"])


def _read_parquet(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ReportInputError(f"missing run output {path}")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader error means a bad file
        raise ReportInputError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportInputError(f"{path} lacks column(s) {missing}")
    return df


def load_metrics(run_dir: Path) -> dict:
    path = run_dir / METRICS
    if not path.is_file():
        raise ReportInputError(f"missing metrics file {path}")
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"cannot parse {path}: {exc}") from exc
    if not isinstance(metrics, dict):
        raise ReportInputError(f"{path} does not hold a JSON object")
    missing = [k for k in REQUIRED_METRICS if metrics.get(k) in (None, "")]
    if missing:
        raise ReportInputError(f"{path} lacks key(s) {missing}")
    return metrics


def load_run(run_dir: str | Path, *, need_trajectory: bool = True) -> RunData:
    """Load and check one ``results/eval/<backbone>/<dataset>/<method>/`` directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportInputError(f"run directory {run_dir} does not exist")
    metrics = load_metrics(run_dir)
    metrics_path = run_dir / METRICS
    try:
        n = int(metrics["n"])
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"{metrics_path}: n={metrics['n']!r} is not an integer") from exc
    if n <= 0:
        raise ReportInputError(f"{metrics_path}: cell has zero problems (n={n})")

    episodes_path = run_dir / EPISODES
    episodes = _read_parquet(episodes_path, REQUIRED_EPISODES)
    if episodes.empty:
        raise ReportInputError(f"{episodes_path}: cell has zero problems (no rows)")
    if len(episodes) != n:
        raise ReportInputError(
            f"{episodes_path} has {len(episodes)} problems but {metrics_path} says n={n}"
        )
    episodes = episodes.copy()
    episodes["problem_id"] = episodes["problem_id"].astype(str)
    dupes = episodes["problem_id"][episodes["problem_id"].duplicated()]
    if len(dupes):
        raise ReportInputError(f"{episodes_path}: duplicated problem_id {dupes.iloc[0]!r}")
    episodes["passed"] = episodes["passed"].fillna(False).astype(bool)

    acc = metrics.get("accuracy")
    if isinstance(acc, int | float) and not math.isnan(acc):
        ours = float(episodes["passed"].mean())
        if abs(ours - acc) > 1e-3 and abs(ours * 100 - acc) > 0.1:
            print(
                f"warning: {metrics_path} accuracy={acc} but {episodes_path} gives {ours:.4f}; "
                "the report uses the episodes",
                file=sys.stderr,
            )

    trajectory = None
    if need_trajectory:
        trajectory = _read_parquet(run_dir / TRAJECTORY, REQUIRED_TRAJECTORY)
        trajectory = trajectory.copy()
        trajectory["problem_id"] = trajectory["problem_id"].astype(str)
    return RunData(run_dir, metrics, episodes, trajectory)
