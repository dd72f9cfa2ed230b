"""CUPED / regression adjustment (spec §2.5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.cuped import cuped_theta, cuped_ttest, relative_cuped_variance
from champion.analysis.delta import relative_lift_variance
from champion.analysis.summary import CupedStats

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


CUPED = VECTORS["cuped"]


def _arms() -> tuple[CupedStats, CupedStats]:
    return (
        CupedStats.from_values(CUPED["y_a"], CUPED["x_a"]),
        CupedStats.from_values(CUPED["y_b"], CUPED["x_b"]),
    )


def test_cuped_vector() -> None:
    tol, exp = CUPED["tol"], CUPED["expected"]
    c, t = _arms()
    r = cuped_ttest(c, t)
    assert r.theta == approx(exp["theta"], tol)
    assert r.correlation == approx(exp["rho"], tol)
    assert 1 - r.correlation**2 == approx(exp["one_minus_rho2"], tol)
    assert [r.comparison.control.mean, r.comparison.treatment.mean] == pytest.approx(
        exp["adjusted_means"], rel=1e-12
    )
    for res, key in ((r.unadjusted.absolute, "raw"), (r.comparison.absolute, "cuped")):
        assert res.estimate == approx(exp[key]["diff"], tol)
        assert res.se == approx(exp[key]["se"], tol)
        assert res.p_value == approx(exp[key]["p"], tol)
    assert r.variance_reduction > 0.9


def test_theta_zero_when_covariate_constant_and_reduces_to_welch() -> None:
    c = CupedStats.from_values([1.0, 2.0, 3.0, 4.0], [5.0] * 4)
    t = CupedStats.from_values([2.0, 3.0, 5.0, 4.0], [5.0] * 4)
    assert cuped_theta(c, t) == 0.0
    r = cuped_ttest(c, t)
    assert r.comparison.absolute.p_value == pytest.approx(r.unadjusted.absolute.p_value)
    assert r.comparison.relative.se == pytest.approx(r.unadjusted.relative.se, rel=1e-12)
    # gbstats relative-CUPED variance collapses to the plain delta method at theta = 0
    assert relative_cuped_variance(c, t, 0.0) == pytest.approx(
        relative_lift_variance(c.post.moments(), t.post.moments()), rel=1e-12
    )


def test_variance_reduction_close_to_rho_squared() -> None:
    rng = np.random.default_rng(21)
    n = 5000
    xa, xb = rng.normal(10, 3, n), rng.normal(10, 3, n)
    ya = 0.8 * xa + rng.normal(0, 2, n)
    yb = 0.8 * xb + rng.normal(0.1, 2, n)
    r = cuped_ttest(CupedStats.from_values(ya, xa), CupedStats.from_values(yb, xb))
    rho2 = r.correlation**2
    assert r.variance_reduction == pytest.approx(rho2, abs=0.02)
    assert r.comparison.absolute.estimate == pytest.approx(0.1, abs=0.1)
