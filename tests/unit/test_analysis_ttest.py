"""Welch's t-test, absolute and relative (spec §2.1)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from champion.analysis.errors import ErrorCode
from champion.analysis.summary import MeanStats, Moments
from champion.analysis.ttest import welch_test, welch_ttest

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


WELCH = VECTORS["welch"]


def _stats(spec: dict[str, Any]) -> MeanStats:
    if "values" in spec:
        return MeanStats.from_values(spec["values"])
    return MeanStats.from_moments(spec["n"], spec["mean"], spec["sd"])


@pytest.mark.parametrize("case", WELCH["cases"], ids=lambda c: c["name"])
def test_welch_vectors(case: dict[str, Any]) -> None:
    tol = WELCH["tol"]
    exp = case["expected"]
    r = welch_ttest(_stats(case["control"]), _stats(case["treatment"]))
    a, rel = r.absolute, r.relative
    assert a.error is None and rel.error is None
    assert a.estimate == approx(exp["diff"], tol)
    assert a.se == approx(exp["se"], tol)
    assert a.df == approx(exp["df"], tol)
    assert a.statistic == approx(exp["t"], tol)
    assert a.p_value == approx(exp["p"], tol)
    assert list(a.ci) == approx(exp["ci"], tol)
    assert rel.estimate == approx(exp["rel"], tol)
    assert rel.se == approx(exp["se_rel"], tol)
    assert list(rel.ci) == approx(exp["ci_rel"], tol)
    assert rel.p_value == approx(exp["p_rel"], tol)
    assert rel.df == a.df
    if "scipy_ci_full_precision" in case:
        assert list(a.ci) == pytest.approx(case["scipy_ci_full_precision"], rel=1e-9)


def test_matches_scipy_on_random_data() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        c = rng.gamma(2.0, 3.0, rng.integers(5, 200))
        t = rng.gamma(2.2, 3.0, rng.integers(5, 200))
        ref = stats.ttest_ind(t, c, equal_var=False)
        r = welch_ttest(MeanStats.from_values(c), MeanStats.from_values(t)).absolute
        assert r.statistic == pytest.approx(ref.statistic, rel=1e-8)
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-7)
        assert r.df == pytest.approx(ref.df, rel=1e-8)
        ci = ref.confidence_interval(0.95)
        assert list(r.ci) == pytest.approx([ci.low, ci.high], rel=1e-8)


def test_degenerate_outputs_are_neutral() -> None:
    one = MeanStats.from_values([3.0])
    many = MeanStats.from_values([1.0, 2.0, 3.0])
    r = welch_ttest(one, many)
    assert r.error == ErrorCode.ZERO_NEGATIVE_VARIANCE
    assert (r.absolute.estimate, r.absolute.ci, r.absolute.p_value) == (0.0, (0.0, 0.0), 1.0)
    assert welch_ttest(MeanStats(), many).error == ErrorCode.INSUFFICIENT_UNITS
    const = MeanStats.from_values([5.0] * 10)
    assert welch_ttest(const, const).error == ErrorCode.ZERO_NEGATIVE_VARIANCE
    assert not welch_ttest(const, const).absolute.significant


def test_baseline_zero_keeps_absolute() -> None:
    c = MeanStats.from_values([-1.0, 1.0, -2.0, 2.0])
    t = MeanStats.from_values([0.5, 1.5, 2.5, 0.0])
    r = welch_ttest(c, t)
    assert r.absolute.error is None and r.absolute.estimate == pytest.approx(1.125)
    assert r.relative.error == ErrorCode.BASELINE_ZERO


def test_negative_baseline_keeps_sign_of_lift() -> None:
    r = welch_test(Moments(-10.0, 4.0, 100), Moments(-9.0, 4.0, 100))
    assert r.relative.estimate == pytest.approx(0.1)  # improvement from -10 to -9 is positive


def test_alpha_and_null_shift() -> None:
    c, t = MeanStats.from_moments(500, 1.0, 1.0), MeanStats.from_moments(500, 1.2, 1.0)
    r90 = welch_ttest(c, t, alpha=0.10).absolute
    r95 = welch_ttest(c, t).absolute
    assert r90.ci_high - r90.ci_low < r95.ci_high - r95.ci_low
    shifted = welch_ttest(c, t, null=0.2).absolute
    assert shifted.statistic == pytest.approx(0.0, abs=1e-9)
    assert shifted.p_value == pytest.approx(1.0)
    assert math.isfinite(r95.df)
