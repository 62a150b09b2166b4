"""Run outputs written atomically, chunk by chunk, so a killed run resumes where it was.

`parts/NNNNN-trajectory.parquet` then `parts/NNNNN-episodes.parquet`: a chunk counts as done
only once its episodes file exists (written last, by rename). `finalize` concatenates the
parts into the run's trajectory.parquet, episodes.parquet and metrics.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd


def atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


class RunStore:
    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.parts = self.dir / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)

    def _episode_parts(self) -> list[Path]:
        return sorted(self.parts.glob("*-episodes.parquet"))

    def done_ids(self) -> set[str]:
        return {pid for p in self._episode_parts() for pid in pd.read_parquet(p)["problem_id"]}

    def write_chunk(self, episodes: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        index = len(self._episode_parts())
        stem = self.parts / f"{index:05d}"
        traj = pd.DataFrame(rows, columns=TRAJECTORY_COLUMNS if not rows else None)
        atomic_write(
            stem.with_name(f"{index:05d}-trajectory.parquet"), lambda p: traj.to_parquet(p)
        )
        eps = pd.DataFrame(episodes)
        atomic_write(stem.with_name(f"{index:05d}-episodes.parquet"), lambda p: eps.to_parquet(p))

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        eps = [pd.read_parquet(p) for p in self._episode_parts()]
        trajs = [
            pd.read_parquet(str(p).replace("-episodes", "-trajectory"))
            for p in self._episode_parts()
        ]
        episodes = pd.concat(eps, ignore_index=True) if eps else pd.DataFrame()
        traj = (
            pd.concat([t for t in trajs if len(t)], ignore_index=True)
            if any(len(t) for t in trajs)
            else pd.DataFrame(columns=TRAJECTORY_COLUMNS)
        )
        return episodes, traj

    def finalize(self, order: list[str], metrics: dict[str, Any]) -> None:
        episodes, traj = self.load()
        dup = episodes["problem_id"].duplicated()
        if dup.any():
            raise RuntimeError(
                f"{self.parts}: problems recorded twice: {list(episodes.problem_id[dup])[:5]}"
            )
        missing = set(order) - set(episodes["problem_id"])
        if missing:
            raise RuntimeError(f"{self.parts}: {len(missing)} problems have no recorded episode")
        rank = {pid: i for i, pid in enumerate(order)}
        episodes = episodes.sort_values("problem_id", key=lambda s: s.map(rank)).reset_index(
            drop=True
        )
        atomic_write(self.dir / "trajectory.parquet", lambda p: traj.to_parquet(p))
        atomic_write(self.dir / "episodes.parquet", lambda p: episodes.to_parquet(p))
        atomic_write(
            self.dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n")
        )


TRAJECTORY_COLUMNS = [
    "method",
    "dataset",
    "backbone",
    "problem_id",
    "stage",
    "iteration",
    "role",
    "candidate",
    "prompt",
    "response",
    "error",
    "attempt",
    "feedback",
    "visible_score",
    "hidden_passed",
    "reflection",
    "prev_attempt",
    "prev_feedback",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "seconds",
    "seed",
    "temperature",
    "cached",
]
