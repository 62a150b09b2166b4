"""Statistics over problems: bootstrap confidence intervals and paired exact tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

DEFAULT_N_BOOT = 10_000
DEFAULT_SEED = 0


def bootstrap_ci(
    values,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
    chunk: int = 2_000,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling problems with replacement.

    ``values`` holds one number per problem (0/1 for accuracy). The RNG is
    ``numpy.random.default_rng(seed)``, so a cell's CI is reproducible. Returns
    ``(nan, nan)`` for an empty input.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError("bootstrap_ci expects a 1-d array (one value per problem)")
    if x.size == 0:
        return float("nan"), float("nan")
    if np.isnan(x).any():
        raise ValueError("bootstrap_ci: values contain NaN")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def detectable_difference(values) -> float | None:
    """Smallest true mean difference that ``len(values)`` problems (one paired difference
    each) detect with 80% power in a two-sided 5% test, normal approximation:
    (1.96 + 0.84) * SD / sqrt(n). Tells an underpowered null from a negative one; None for
    fewer than two values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    return float((1.96 + 0.84) * x.std(ddof=1) / np.sqrt(x.size))


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired 0/1 outcomes (a vs b on the same problems)."""

    n_paired: int
    both_correct: int
    a_only: int  # a correct, b wrong
    b_only: int  # a wrong, b correct
    neither: int
    p_value: float

    @property
    def accuracy_a(self) -> float:
        return (self.both_correct + self.a_only) / self.n_paired if self.n_paired else np.nan

    @property
    def accuracy_b(self) -> float:
        return (self.both_correct + self.b_only) / self.n_paired if self.n_paired else np.nan

    def as_dict(self) -> dict:
        return asdict(self) | {"accuracy_a": self.accuracy_a, "accuracy_b": self.accuracy_b}


def mcnemar_exact(a, b) -> McNemarResult:
    """Two-sided exact McNemar test of paired booleans ``a`` and ``b`` (same problems, same order).

    Under H0 the discordant pairs split 50/50, so the p-value is
    ``binomtest(a_only, a_only + b_only, 0.5)``; with no discordant pair it is 1.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("mcnemar_exact expects two 1-d arrays of the same length")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(_st.binomtest(a_only, discordant, 0.5).pvalue)
    return McNemarResult(
        n_paired=int(a.size),
        both_correct=int(np.sum(a & b)),
        a_only=a_only,
        b_only=b_only,
        neither=int(np.sum(~a & ~b)),
        p_value=min(p, 1.0),
    )


def mcnemar_paired(a: pd.Series, b: pd.Series) -> McNemarResult:
    """McNemar on two per-problem outcome Series indexed by problem id (inner join)."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return mcnemar_exact(joined["a"].astype(bool).to_numpy(), joined["b"].astype(bool).to_numpy())


def pearson(x, y) -> tuple[float, float, int]:
    """Pearson r, its two-sided p-value and n over pairs where both are finite.

    Returns ``(nan, nan, n)`` for fewer than 3 pairs or a constant input.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), n
    res = _st.pearsonr(x, y)
    return float(res.statistic), float(res.pvalue), n
