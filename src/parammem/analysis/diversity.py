"""Reflection diversity (ParamMem paper, diversity analysis).

Per problem: the mean pairwise cosine distance between the embeddings of all its
reflections across rounds. Per run: the mean of that over problems with at least two
reflections. Dynamic analysis: K-means over all reflection embeddings, K* by the elbow of
the inertia curve, silhouette for every K.

Reflections are trajectory rows (see docs/design.md) whose ``role`` is ``reflect`` or
``parammem``, with a non-empty ``response``. ``embedder`` is anything with
``encode(list[str]) -> ndarray`` (normally ``parammem.embeddings.Embedder``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REFLECTION_ROLES = ("reflect", "parammem")


def mean_pairwise_cosine_distance(embeddings: np.ndarray) -> float:
    """Mean of ``1 - cos(e_i, e_j)`` over pairs i < j; NaN with fewer than 2 rows."""
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError("expected a 2-d array (one embedding per row)")
    n = emb.shape[0]
    if n < 2:
        return float("nan")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = emb / np.where(norms == 0, 1.0, norms)
    sim = emb @ emb.T
    iu = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - sim[iu]))


def _texts(value) -> list[str]:
    """A cell of the ``reflection``/``response`` column as a list of non-blank texts."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Sequence | np.ndarray):  # a list of parsed reflections
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [str(value)]


def reflections_by_problem(
    trajectory: pd.DataFrame, roles: Sequence[str] = REFLECTION_ROLES
) -> dict[str, list[str]]:
    """Map problem id -> its reflection texts in (stage, iteration, candidate) order.

    The text of a row is its ``reflection`` column when the trajectory has one and it is
    set (a string, or a list of strings for a call that produced several reflections),
    else its ``response``. Blank texts are dropped.
    """
    missing = {"problem_id", "role", "response"} - set(trajectory.columns)
    if missing:
        raise KeyError(f"trajectory lacks column(s) {sorted(missing)}")
    rows = trajectory[trajectory["role"].isin(list(roles))]
    order = [c for c in ("stage", "iteration", "candidate") if c in rows.columns]
    if order:
        rows = rows.sort_values(order, kind="stable")
    has_refl = "reflection" in rows.columns
    out: dict[str, list[str]] = {}
    for rec in rows.to_dict("records"):
        texts = _texts(rec["reflection"]) if has_refl else []
        texts = texts or _texts(rec["response"])
        if texts:
            out.setdefault(str(rec["problem_id"]), []).extend(texts)
    return out


def problem_diversity(reflections: Mapping[str, Sequence[str]], embedder) -> pd.Series:
    """Per-problem mean pairwise cosine distance (NaN for problems with < 2 reflections).

    All texts are embedded in one ``encode`` call.
    """
    pids = list(reflections)
    texts = [t for pid in pids for t in reflections[pid]]
    emb = embedder.encode(texts) if texts else np.zeros((0, 1), np.float32)
    values, start = [], 0
    for pid in pids:
        k = len(reflections[pid])
        values.append(mean_pairwise_cosine_distance(emb[start : start + k]))
        start += k
    return pd.Series(values, index=pd.Index(pids, name="problem_id"), name="diversity", dtype=float)


@dataclass
class RunDiversity:
    mean: float  # mean over problems with >= 2 reflections (NaN if none)
    n_problems: int  # problems that entered the mean
    n_reflections: int  # all reflections of the run
    per_problem: pd.Series = field(repr=False)


def run_diversity(
    trajectory: pd.DataFrame, embedder, roles: Sequence[str] = REFLECTION_ROLES
) -> RunDiversity:
    """Diversity of one run (one method on one cell) from its trajectory table."""
    refl = reflections_by_problem(trajectory, roles)
    per_problem = problem_diversity(refl, embedder)
    valid = per_problem.dropna()
    return RunDiversity(
        mean=float(valid.mean()) if len(valid) else float("nan"),
        n_problems=int(len(valid)),
        n_reflections=int(sum(len(v) for v in refl.values())),
        per_problem=per_problem,
    )


# --- dynamic analysis (K-means) -------------------------------------------------------


def kmeans_inertias(
    embeddings: np.ndarray, ks: Sequence[int], seed: int = 0, n_init: int = 10
) -> dict[int, float]:
    """K-means inertia for every K in ``ks`` (K <= number of points)."""
    from sklearn.cluster import KMeans

    emb = np.asarray(embeddings, dtype=np.float64)
    return {
        int(k): float(KMeans(n_clusters=int(k), n_init=n_init, random_state=seed).fit(emb).inertia_)
        for k in ks
        if 1 <= k <= len(emb)
    }


def elbow_k(inertias: Mapping[int, float]) -> int:
    """K* of an inertia curve: the point farthest from the chord joining its ends."""
    ks = np.array(sorted(inertias), dtype=float)
    if ks.size == 0:
        raise ValueError("elbow_k needs at least one K")
    if ks.size <= 2:
        return int(ks[0])
    ys = np.array([inertias[int(k)] for k in ks], dtype=float)
    # normalise both axes to [0, 1] so the answer does not depend on units
    xn = (ks - ks[0]) / (ks[-1] - ks[0])
    span = ys.max() - ys.min()
    yn = (ys - ys.min()) / span if span > 0 else np.zeros_like(ys)
    p0, p1 = np.array([xn[0], yn[0]]), np.array([xn[-1], yn[-1]])
    d = p1 - p0
    dist = np.abs(d[0] * (yn - p0[1]) - d[1] * (xn - p0[0])) / np.hypot(*d)
    return int(ks[int(np.argmax(dist))])


def silhouette_by_k(
    embeddings: np.ndarray, ks: Sequence[int], seed: int = 0, n_init: int = 10
) -> dict[int, float]:
    """Cosine silhouette score of a K-means clustering for every valid K (2 <= K < n)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import silhouette_score

    emb = np.asarray(embeddings, dtype=np.float64)
    out = {}
    for k in ks:
        if 2 <= k < len(emb):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # duplicates: handled below
                km = KMeans(n_clusters=int(k), n_init=n_init, random_state=seed)
                labels = km.fit_predict(emb)
            if len(set(labels)) < 2:  # duplicate points collapse into one cluster
                out[int(k)] = float("nan")
            else:
                out[int(k)] = float(silhouette_score(emb, labels, metric="cosine"))
    return out
