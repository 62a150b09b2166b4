"""Reflection diversity and the K-means helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from parammem.analysis.diversity import (
    elbow_k,
    kmeans_inertias,
    mean_pairwise_cosine_distance,
    problem_diversity,
    reflections_by_problem,
    run_diversity,
    silhouette_by_k,
)


class TableEmbedder:
    """Looks texts up in a fixed table of vectors."""

    def __init__(self, table):
        self.table = table
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.array([self.table[t] for t in texts], dtype=np.float32)


def test_mean_pairwise_cosine_distance_known_vectors():
    # pairs: (e1, e2) orthogonal -> 1; (e1, -e1) opposite -> 2; (e2, -e1) orthogonal -> 1
    emb = np.array([[1.0, 0.0], [0.0, 3.0], [-2.0, 0.0]])
    assert mean_pairwise_cosine_distance(emb) == pytest.approx((1 + 2 + 1) / 3)
    assert mean_pairwise_cosine_distance(np.ones((4, 5))) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(mean_pairwise_cosine_distance(np.ones((1, 5))))
    assert np.isnan(mean_pairwise_cosine_distance(np.zeros((0, 5))))


def _trajectory():
    rows = [
        # problem, stage, iteration, role, candidate, response
        ("p1", 1, 2, "reflect", 0, "b"),
        ("p1", 1, 1, "reflect", 0, "a"),
        ("p1", 1, 1, "solve", 0, "code"),
        ("p1", 1, 1, "parammem", 0, "c"),
        ("p2", 1, 1, "reflect", 0, "a"),
        ("p2", 1, 2, "reflect", 0, "   "),  # blank: ignored
        ("p3", 1, 1, "test_gen", 0, "assert x"),
    ]
    return pd.DataFrame(
        rows, columns=["problem_id", "stage", "iteration", "role", "candidate", "response"]
    )


def test_reflections_by_problem_filters_and_orders():
    refl = reflections_by_problem(_trajectory())
    assert refl == {"p1": ["a", "c", "b"], "p2": ["a"]}
    assert reflections_by_problem(_trajectory(), roles=("parammem",)) == {"p1": ["c"]}


def test_reflection_column_preferred_and_lists_exploded():
    traj = _trajectory()
    traj["reflection"] = None
    traj["reflection"] = traj["reflection"].astype(object)
    traj.at[0, "reflection"] = ["x", "y", " "]  # one DoT call, several reflections
    traj.at[1, "reflection"] = "z"
    refl = reflections_by_problem(traj)
    assert refl == {"p1": ["z", "c", "x", "y"], "p2": ["a"]}


def test_run_diversity_uses_one_encode_call():
    emb = TableEmbedder({"a": [1, 0], "b": [0, 1], "c": [1, 0]})
    res = run_diversity(_trajectory(), emb)
    # p1: a-c 0, a-b 1, c-b 1 -> 2/3; p2 has one reflection -> excluded
    assert res.mean == pytest.approx(2 / 3)
    assert res.n_problems == 1 and res.n_reflections == 4
    assert np.isnan(res.per_problem["p2"])
    assert emb.calls == 1


def test_problem_diversity_empty():
    out = problem_diversity({}, TableEmbedder({}))
    assert out.empty
    res = run_diversity(_trajectory().iloc[:0], TableEmbedder({}))
    assert np.isnan(res.mean) and res.n_problems == 0


def test_elbow_and_silhouette_find_planted_clusters():
    rng = np.random.default_rng(0)
    centers = np.eye(8)[:4] * 10
    pts = np.concatenate([c + rng.normal(scale=0.3, size=(12, 8)) for c in centers])
    inertias = kmeans_inertias(pts, range(1, 8), n_init=3)
    assert elbow_k(inertias) == 4
    sil = silhouette_by_k(pts, range(2, 7), n_init=3)
    assert max(sil, key=sil.get) == 4
    assert elbow_k({3: 5.0}) == 3
    dup = silhouette_by_k(np.ones((6, 3)), [2])
    assert np.isnan(dup[2])
