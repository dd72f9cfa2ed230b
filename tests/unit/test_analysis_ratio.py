"""Ratio metrics via the delta method (spec §2.3)."""

from __future__ import annotations

import numpy as np
import pytest

from champion.analysis.errors import ErrorCode
from champion.analysis.ratio import ratio_estimate_variance, ratio_moments, ratio_ttest
from champion.analysis.summary import MeanStats, RatioStats
from champion.analysis.ttest import welch_ttest


def test_unit_denominator_reduces_to_welch() -> None:
    rng = np.random.default_rng(5)
    mc, mt = rng.normal(3.0, 1.0, 80), rng.normal(3.4, 1.5, 120)
    r = ratio_ttest(
        RatioStats.from_values(mc, np.ones_like(mc)), RatioStats.from_values(mt, np.ones_like(mt))
    )
    w = welch_ttest(MeanStats.from_values(mc), MeanStats.from_values(mt))
    for got, ref in ((r.absolute, w.absolute), (r.relative, w.relative)):
        assert got.estimate == pytest.approx(ref.estimate, rel=1e-12)
        assert got.se == pytest.approx(ref.se, rel=1e-9)
        assert got.p_value == pytest.approx(ref.p_value, rel=1e-8)


def test_delta_variance_matches_formula_and_monte_carlo() -> None:
    rng = np.random.default_rng(6)
    n = 400

    def draw() -> tuple[np.ndarray, np.ndarray]:
        d = rng.poisson(4.0, n) + 1.0
        m = rng.binomial(d.astype(int), 0.25) + rng.normal(0, 0.2, n)
        return m, d

    m, d = draw()
    s = RatioStats.from_values(m, d)
    mm, md = m.mean(), d.mean()
    cov = np.cov(m, d, ddof=1)
    manual = (
        cov[0, 0] / md**2 + cov[1, 1] * mm**2 / md**4 - 2 * cov[0, 1] * mm / md**3
    ) / n
    assert ratio_estimate_variance(s) == pytest.approx(manual, rel=1e-9)
    assert ratio_moments(s).mean == pytest.approx(m.sum() / d.sum())
    # sampling variance of R over repeated experiments agrees with the delta method
    ratios = []
    for _ in range(1500):
        m2, d2 = draw()
        ratios.append(m2.sum() / d2.sum())
    assert np.var(ratios, ddof=1) == pytest.approx(manual, rel=0.15)


def test_zero_denominator_is_degenerate() -> None:
    zero = RatioStats.from_values([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    ok = RatioStats.from_values([1.0, 2.0, 3.0], [1.0, 2.0, 2.0])
    r = ratio_ttest(zero, ok)
    assert r.relative.error == ErrorCode.BASELINE_ZERO
    assert ratio_ttest(zero, zero).error == ErrorCode.ZERO_NEGATIVE_VARIANCE
