"""Two-proportion z-test, Wilson and Newcombe intervals (spec §2.2, §6.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.errors import ErrorCode
from champion.analysis.power import sample_size_proportions
from champion.analysis.proportions import (
    newcombe_interval,
    two_proportion_ztest,
    wilson_interval,
)
from champion.analysis.summary import ProportionStats

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


PROPS = VECTORS["two_proportions"]


def _p(pair: list[int]) -> ProportionStats:
    return ProportionStats(n=pair[1], conversions=pair[0])


@pytest.mark.parametrize("case", PROPS["cases"], ids=lambda c: c["name"])
def test_two_proportion_vectors(case: dict[str, Any]) -> None:
    tol, exp = PROPS["tol"], case["expected"]
    r = two_proportion_ztest(_p(case["control"]), _p(case["treatment"]))
    a = r.absolute
    if "z" in exp:
        assert a.statistic == approx(exp["z"], tol)
    assert a.p_value == approx(exp["p"], tol)
    assert list(a.ci) == approx(exp["ci"], tol)
    if "error" in exp:
        assert a.error == ErrorCode(exp["error"])
    else:
        assert a.error is None
    if "relative_error" in exp:
        assert r.relative.error == ErrorCode(exp["relative_error"])
    if "rel" in exp:
        assert r.control.mean == approx(exp["p_control"], tol)
        assert r.treatment.mean == approx(exp["p_treatment"], tol)
        assert a.estimate == approx(exp["diff"], tol)
        assert r.relative.estimate == approx(exp["rel"], tol)
        assert r.relative.se == approx(exp["se_rel"], tol)
        assert list(r.relative.ci) == approx(exp["ci_rel"], tol)


def test_wilson_vectors() -> None:
    cls = VECTORS["shadow_classification"]
    tol = cls["tol"]
    assert list(wilson_interval(8, 10)) == approx(cls["expected"]["wilson"], tol)
    for case in cls["wilson_cases"]:
        assert list(wilson_interval(case["k"], case["n"])) == approx(case["ci"], tol)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_newcombe_literature_example() -> None:
    # Newcombe (1998), Stat. Med. 17:873, example (a): 56/70 - 48/80, method 10 -> 0.0524, 0.3339
    lo, hi = newcombe_interval(ProportionStats(80, 48), ProportionStats(70, 56))
    assert (lo, hi) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_newcombe_selected_for_small_counts() -> None:
    c, t = ProportionStats(40, 2), ProportionStats(40, 9)
    auto = two_proportion_ztest(c, t, ci_method="auto").absolute
    wald = two_proportion_ztest(c, t).absolute
    assert auto.ci == pytest.approx(newcombe_interval(c, t))
    assert auto.ci != pytest.approx(wald.ci)
    assert auto.p_value == wald.p_value


def test_all_converted_and_empty_arms() -> None:
    full = two_proportion_ztest(ProportionStats(50, 50), ProportionStats(60, 60))
    assert full.error == ErrorCode.ZERO_NEGATIVE_VARIANCE and full.absolute.p_value == 1.0
    empty = two_proportion_ztest(ProportionStats(0, 0), ProportionStats(60, 6))
    assert empty.error == ErrorCode.INSUFFICIENT_UNITS


def test_three_point_lift_is_detected_at_planned_power() -> None:
    """+3 points (10% -> 13%) at the 80%-power sample size: empirical power ~0.8, seeded."""
    n = sample_size_proportions(0.10, 0.13).n_control
    rng = np.random.default_rng(2024)
    sims = 400
    xc = rng.binomial(n, 0.10, sims)
    xt = rng.binomial(n, 0.13, sims)
    hits = [
        two_proportion_ztest(ProportionStats(n, int(a)), ProportionStats(n, int(b))).absolute
        for a, b in zip(xc, xt, strict=True)
    ]
    detected = np.mean([h.significant and h.estimate > 0 for h in hits])
    assert 0.72 <= detected <= 0.88  # 0.80 +- ~4 binomial SE
    # and a single seeded experiment with 2x the planned n clearly detects the lift
    xc1, xt1 = rng.binomial(2 * n, 0.10), rng.binomial(2 * n, 0.13)
    r = two_proportion_ztest(ProportionStats(2 * n, int(xc1)), ProportionStats(2 * n, int(xt1)))
    assert r.absolute.significant and r.absolute.p_value < 0.05
    assert r.absolute.ci_low > 0
    assert r.absolute.ci_low < 0.03 < r.absolute.ci_high
