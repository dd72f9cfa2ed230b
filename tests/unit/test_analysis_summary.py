"""Sufficient-statistics accumulators (spec §0.2)."""

from __future__ import annotations

import numpy as np
import pytest

from champion.analysis.summary import CupedStats, MeanStats, ProportionStats, RatioStats


def test_mean_stats_match_numpy_and_merge() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, 1000)
    whole = MeanStats.from_values(x)
    merged = MeanStats.from_values(x[:300]) + MeanStats.from_values(x[300:])
    assert merged.n == whole.n == 1000
    assert merged.mean == pytest.approx(x.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(x.var(ddof=1), rel=1e-9)
    assert whole.variance == pytest.approx(merged.variance, rel=1e-12)
    one = MeanStats().add(2.0).add(4.0)
    assert (one.n, one.mean, one.variance) == (2, 3.0, 2.0)


def test_mean_stats_degenerate() -> None:
    assert MeanStats().mean == 0.0 and MeanStats().variance == 0.0
    assert MeanStats.from_values([7.0]).variance == 0.0
    s = MeanStats.from_moments(10000, 10.0, 5.0)
    assert s.mean == pytest.approx(10.0) and s.sd == pytest.approx(5.0)
    with pytest.raises(ValueError):
        MeanStats(n=-1)


def test_proportion_stats() -> None:
    s = ProportionStats.from_outcomes([1, 0, 0, 1, 1]) + ProportionStats(5, 1)
    assert (s.n, s.conversions) == (10, 4)
    assert s.variance == pytest.approx(0.4 * 0.6)
    with pytest.raises(ValueError):
        ProportionStats(10, 11)


def test_ratio_and_cuped_stats_covariances() -> None:
    rng = np.random.default_rng(4)
    d = rng.poisson(3.0, 500) + 1.0
    m = rng.binomial(d.astype(int), 0.3).astype(float)
    r = RatioStats.from_values(m[:200], d[:200]) + RatioStats.from_values(m[200:], d[200:])
    assert r.covariance == pytest.approx(np.cov(m, d, ddof=1)[0, 1], rel=1e-9)
    assert r.numerator.mean == pytest.approx(m.mean())
    c = CupedStats.from_values(m, d)
    assert c.covariance == pytest.approx(r.covariance, rel=1e-12)
    assert c.pre.variance == pytest.approx(d.var(ddof=1), rel=1e-9)
    with pytest.raises(ValueError):
        RatioStats.from_values([1.0], [1.0, 2.0])
