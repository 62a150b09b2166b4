"""Cross-sample memory bank (DoT-bank, ParamAgent-plus).

Built from a finished stage-1 run: solved problems (problem text + the solution the agent
settled on) indexed by problem embedding, and reflection trajectories (previous attempt,
feedback, reflection, improved attempt) indexed by reflection embedding. Retrieval is
cosine top-k; a problem never retrieves itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SolvedExample:
    task_id: str
    problem: str
    solution: str


@dataclass(frozen=True)
class TrajectoryExample:
    task_id: str
    previous_attempt: str
    feedback: str
    reflection: str
    improved_attempt: str


class MemoryBank:
    def __init__(
        self, embedder, solved: list[SolvedExample], trajectories: list[TrajectoryExample]
    ):
        self.embedder = embedder
        self.solved = solved
        self.trajectories = trajectories
        self._solved_vecs = self._encode([s.problem for s in solved])
        self._traj_vecs = self._encode([t.reflection for t in trajectories])

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(self.embedder.encode(texts), dtype=np.float32)

    @staticmethod
    def _top(vecs: np.ndarray, query: np.ndarray, owners: list[str], exclude: str, k: int):
        if len(owners) == 0:
            return []
        scores = vecs @ query
        order = np.argsort(-scores, kind="stable")
        return [int(i) for i in order if owners[i] != exclude][:k]

    def similar_solved(self, task_ids: list[str], problems: list[str], k: int = 1):
        """Top-k solved examples for each problem (excluding the problem itself)."""
        queries = self._encode(problems)
        owners = [s.task_id for s in self.solved]
        return (
            [
                [self.solved[i] for i in self._top(self._solved_vecs, q, owners, tid, k)]
                for tid, q in zip(task_ids, queries, strict=True)
            ]
            if problems
            else []
        )

    def similar_trajectories(self, task_ids: list[str], reflections: list[str], k: int = 1):
        """Top-k trajectories whose reflection is closest to each new reflection."""
        queries = self._encode(reflections)
        owners = [t.task_id for t in self.trajectories]
        return (
            [
                [self.trajectories[i] for i in self._top(self._traj_vecs, q, owners, tid, k)]
                for tid, q in zip(task_ids, queries, strict=True)
            ]
            if reflections
            else []
        )
