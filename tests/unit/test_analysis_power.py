"""Power and minimum sample size (spec §2.8)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.power import (
    minimum_detectable_effect,
    power_two_sided,
    sample_size_means,
    sample_size_proportions,
    sequential_inflation,
    treatment_rate,
)
from champion.analysis.summary import MeanStats
from champion.analysis.ttest import welch_ttest

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


POWER = VECTORS["power"]


def test_means_vector() -> None:
    for case in POWER["means"]:
        got = sample_size_means(
            case["sigma"], case["delta"], alpha=case["alpha"], power=case["power"]
        )
        assert (got.n_control, got.n_treatment) == (case["n_per_arm"], case["n_per_arm"])
        assert got.n_control == math.ceil(case["statsmodels_unrounded"])


@pytest.mark.parametrize("case", POWER["proportions"], ids=lambda c: f"{c['p1']}->{c['p2']}")
def test_proportion_vectors(case: dict[str, Any]) -> None:
    assert sample_size_proportions(case["p1"], case["p2"]).n_control == case["pooled"]
    simple = sample_size_proportions(case["p1"], case["p2"], method="simple")
    assert simple.n_control == case["simple"]


def test_relative_mde_and_power_vectors() -> None:
    assert treatment_rate(0.10, 0.10) == pytest.approx(0.11)
    rp = POWER["realised_power"]
    se = rp["sigma"] * math.sqrt(2 / rp["n_per_arm"])
    assert power_two_sided(rp["delta"], se) == pytest.approx(rp["expected"], abs=rp["tol"])
    assert minimum_detectable_effect(se) == pytest.approx(rp["delta"], rel=1e-3)
    inf = POWER["sequential_inflation"]
    assert sequential_inflation(5000, alpha=inf["alpha"]) == pytest.approx(
        inf["expected"], abs=inf["tol"]
    )


def test_ratio_allocation_and_cuped() -> None:
    base = sample_size_means(1.0, 0.1)
    skew = sample_size_means(1.0, 0.1, ratio=2.0)
    assert skew.n_treatment == pytest.approx(2 * skew.n_control, abs=1)
    assert skew.n_control < base.n_control
    assert sample_size_means(1.0, 0.1, cuped_rho=0.5).n_control == math.ceil(0.75 * 1569.7721)
    with pytest.raises(ValueError):
        sample_size_proportions(0.1, 0.1)


def test_empirical_power_of_planned_mean_test() -> None:
    n = sample_size_means(1.0, 0.1).n_control
    rng = np.random.default_rng(31)
    sims, hits = 300, 0
    for _ in range(sims):
        c = MeanStats.from_values(rng.normal(0.0, 1.0, n))
        t = MeanStats.from_values(rng.normal(0.1, 1.0, n))
        hits += welch_ttest(c, t).absolute.significant
    assert 0.72 <= hits / sims <= 0.88
