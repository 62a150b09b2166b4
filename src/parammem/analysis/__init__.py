"""Statistics (bootstrap CI, paired exact tests) and reflection-diversity analysis.

Imports nothing from other parammem rooms except ``parammem.embeddings`` (through the
embedder objects callers pass in).
"""

from parammem.analysis.diversity import (
    REFLECTION_ROLES,
    RunDiversity,
    elbow_k,
    kmeans_inertias,
    mean_pairwise_cosine_distance,
    problem_diversity,
    reflections_by_problem,
    run_diversity,
    silhouette_by_k,
)
from parammem.analysis.stats import (
    McNemarResult,
    bootstrap_ci,
    mcnemar_exact,
    mcnemar_paired,
    pearson,
)

__all__ = [
    "REFLECTION_ROLES",
    "McNemarResult",
    "RunDiversity",
    "bootstrap_ci",
    "elbow_k",
    "kmeans_inertias",
    "mcnemar_exact",
    "mcnemar_paired",
    "mean_pairwise_cosine_distance",
    "pearson",
    "problem_diversity",
    "reflections_by_problem",
    "run_diversity",
    "silhouette_by_k",
]
