"""Bootstrap CI, exact McNemar and Pearson helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from parammem.analysis.stats import (
    bootstrap_ci,
    detectable_difference,
    mcnemar_exact,
    mcnemar_paired,
    pearson,
)


def test_bootstrap_matches_binomial_quantiles():
    # Resampling n 0/1 outcomes with k ones: the bootstrap mean is exactly Binomial(n, k/n)/n,
    # so the percentile CI must match the binomial quantiles (up to Monte-Carlo error).
    n, k = 100, 60
    values = np.r_[np.ones(k), np.zeros(n - k)]
    lo, hi = bootstrap_ci(values, n_boot=20_000, seed=1)
    exp_lo = stats.binom.ppf(0.025, n, k / n) / n
    exp_hi = stats.binom.ppf(0.975, n, k / n) / n
    assert lo == pytest.approx(exp_lo, abs=0.011)
    assert hi == pytest.approx(exp_hi, abs=0.011)
    # and it is close to the normal approximation 0.6 +- 1.96 * sqrt(.24 / 100)
    half = 1.96 * np.sqrt(0.6 * 0.4 / n)
    assert lo == pytest.approx(0.6 - half, abs=0.015)
    assert hi == pytest.approx(0.6 + half, abs=0.015)


def test_bootstrap_degenerate_seeded_and_empty():
    assert bootstrap_ci(np.ones(30)) == (1.0, 1.0)
    assert bootstrap_ci([0, 0, 0]) == (0.0, 0.0)
    a = bootstrap_ci([0, 1, 1, 0, 1], n_boot=1000, seed=7)
    b = bootstrap_ci([0, 1, 1, 0, 1], n_boot=1000, seed=7)
    assert a == b
    assert all(np.isnan(bootstrap_ci([])))
    with pytest.raises(ValueError):
        bootstrap_ci([0.0, np.nan])


def test_bootstrap_chunking_does_not_change_result():
    x = np.random.default_rng(3).random(57) < 0.4
    whole = bootstrap_ci(x, n_boot=3000, seed=5, chunk=3000)
    assert whole == bootstrap_ci(x, n_boot=3000, seed=5, chunk=700)
    assert 0 <= whole[0] <= x.mean() <= whole[1] <= 1


def test_mcnemar_hand_computed():
    # 2x2 table: both 5, a only 8, b only 2, neither 5.
    # Exact two-sided p = 2 * P(X <= 2 | Bin(10, .5)) = 2 * (1 + 10 + 45) / 1024 = 0.109375
    a = [1] * 5 + [1] * 8 + [0] * 2 + [0] * 5
    b = [1] * 5 + [0] * 8 + [1] * 2 + [0] * 5
    res = mcnemar_exact(a, b)
    assert (res.both_correct, res.a_only, res.b_only, res.neither) == (5, 8, 2, 5)
    assert res.n_paired == 20
    assert res.p_value == pytest.approx(112 / 1024)
    assert res.accuracy_a == pytest.approx(13 / 20)
    assert res.accuracy_b == pytest.approx(7 / 20)
    assert mcnemar_exact(b, a).p_value == pytest.approx(res.p_value)  # symmetric


def test_mcnemar_edge_cases():
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]).p_value == 1.0  # no discordant pair
    # 0 vs 6 discordant: p = 2 / 64
    assert mcnemar_exact([1] * 6, [0] * 6).p_value == pytest.approx(2 / 64)
    with pytest.raises(ValueError):
        mcnemar_exact([1, 0], [1])


def test_mcnemar_paired_aligns_on_problem_id():
    a = pd.Series([True, False, True], index=["p1", "p2", "p3"])
    b = pd.Series([False, True, True, True], index=["p3", "p1", "p2", "p9"])
    res = mcnemar_paired(a, b)
    # aligned: p1 (T, T), p2 (F, T), p3 (T, F); p9 only in b
    assert res.n_paired == 3
    assert (res.both_correct, res.a_only, res.b_only) == (1, 1, 1)


def test_pearson():
    r, p, n = pearson([1, 2, 3, 4, np.nan], [2, 4, 6, 8, 1])
    assert r == pytest.approx(1.0) and n == 4
    assert np.isnan(pearson([1, 2], [3, 4])[0])
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3])[0])


def test_detectable_difference_scales_with_sd_over_sqrt_n():
    # SD of (0, 1, 0, 1) = 0.5774; 2.8 * SD / sqrt(4)
    assert detectable_difference([0, 1, 0, 1]) == pytest.approx(2.8 * (1 / 3) ** 0.5 / 2)
    # four times the problems halve it
    assert detectable_difference([0, 1] * 8) < detectable_difference([0, 1, 0, 1]) / 1.9
    assert detectable_difference([0.3]) is None and detectable_difference([]) is None
