"""Bayesian chance to beat control (spec §2.7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from champion.analysis.bayes import (
    GaussianPrior,
    absolute_prior,
    bayes_from_comparison,
    beta_binomial_chance_to_win,
    expected_loss,
    gaussian_chance_to_win,
)
from champion.analysis.errors import ErrorCode
from champion.analysis.proportions import two_proportion_ztest
from champion.analysis.summary import MeanStats, ProportionStats
from champion.analysis.ttest import Comparison, welch_ttest

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


BAYES = VECTORS["bayes"]


def _source(name: str) -> Comparison:
    if name.startswith("welch vector 2"):
        return welch_ttest(
            MeanStats.from_moments(10000, 10.0, 5.0), MeanStats.from_moments(10000, 10.2, 5.2)
        )
    return two_proportion_ztest(ProportionStats(2000, 200), ProportionStats(2000, 250))


@pytest.mark.parametrize("case", BAYES["cases"], ids=lambda c: c["name"])
def test_gaussian_vectors(case: dict[str, Any]) -> None:
    tol, exp = BAYES["tol"], case["expected"]
    prior = GaussianPrior(**case["prior"]) if case["prior"] else None
    r = bayes_from_comparison(_source(case["estimate_source"]), prior=prior)
    assert r.error is None
    assert r.mean == approx(exp["mean"], tol)
    assert r.sd == approx(exp["sd"], tol)
    assert r.chance_to_win == approx(exp["ctw"], tol)
    assert list(r.ci) == approx(exp["ci"], tol)


@pytest.mark.parametrize("case", BAYES["beta_binomial"], ids=lambda c: str(c["treatment"]))
def test_beta_binomial_vectors(case: dict[str, Any]) -> None:
    (xc, nc), (xt, nt) = case["control"], case["treatment"]
    got = beta_binomial_chance_to_win(xc, nc, xt, nt)
    assert got == approx(case["expected"], BAYES["tol"])
    # non-integer prior goes through quadrature and stays close
    quad = beta_binomial_chance_to_win(xc, nc, xt, nt, prior_alpha=1.0000001)
    assert quad == pytest.approx(got, abs=1e-5)


def test_risk_matches_truncated_normal_and_monte_carlo() -> None:
    for mean, sd in [(0.01, 0.02), (-0.03, 0.01), (0.0, 0.5)]:
        p_neg = stats.norm.cdf(0, mean, sd)
        ref_ctrl = (1 - p_neg) * stats.truncnorm.mean(-mean / sd, np.inf, mean, sd)
        ref_trt = -p_neg * stats.truncnorm.mean(-np.inf, -mean / sd, mean, sd)
        assert expected_loss(mean, sd) == pytest.approx((ref_ctrl, ref_trt), rel=1e-9, abs=1e-15)
    draws = np.random.default_rng(8).normal(0.01, 0.02, 400_000)
    mc = (np.maximum(draws, 0).mean(), np.maximum(-draws, 0).mean())
    assert expected_loss(0.01, 0.02) == pytest.approx(mc, rel=0.01)
    assert expected_loss(5.0, 0.1) == (5.0, 0.0)  # |mu/sigma| > 37 analytic branch


def test_inverse_metric_and_neutral_outputs() -> None:
    up = gaussian_chance_to_win(0.02, 0.01)
    down = gaussian_chance_to_win(0.02, 0.01, inverse=True)
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win)
    assert (down.risk_control, down.risk_treatment) == (up.risk_treatment, up.risk_control)
    neutral = gaussian_chance_to_win(0.02, 0.0)
    assert neutral.error == ErrorCode.ZERO_NEGATIVE_VARIANCE and neutral.chance_to_win == 0.5
    zero_base = two_proportion_ztest(ProportionStats(100, 0), ProportionStats(100, 3))
    assert bayes_from_comparison(zero_base).error == ErrorCode.BASELINE_ZERO


def test_absolute_scale_rescales_the_relative_prior() -> None:
    assert absolute_prior(GaussianPrior(0.1, 0.3), -20.0) == GaussianPrior(2.0, 6.0)
    comp = welch_ttest(
        MeanStats.from_moments(400, 20.0, 4.0), MeanStats.from_moments(400, 20.5, 4.0)
    )
    r = bayes_from_comparison(comp, relative=False, prior=GaussianPrior(0.0, 0.3))
    direct = gaussian_chance_to_win(
        comp.absolute.estimate, comp.absolute.se, prior=GaussianPrior(0.0, 6.0)
    )
    assert r.mean == pytest.approx(direct.mean) and r.sd == pytest.approx(direct.sd)
    assert r.mean < comp.absolute.estimate  # shrunk towards 0
