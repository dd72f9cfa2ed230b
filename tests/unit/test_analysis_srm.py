"""Sample-ratio mismatch (spec §2.4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.errors import ErrorCode
from champion.analysis.srm import srm_check

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


SRM = VECTORS["srm"]


@pytest.mark.parametrize("case", SRM["cases"], ids=lambda c: str(c["counts"]))
def test_srm_vectors(case: dict[str, Any]) -> None:
    r = srm_check(case["counts"], case["weights"], threshold=SRM["threshold"])
    assert r.chi2 == approx(case["chi2"], SRM["tol"])
    assert r.p_value == approx(case["p"], SRM["tol"])
    assert r.srm_detected is case["srm"]


def test_srm_extra_and_scipy_precision() -> None:
    ex = SRM["extra"]
    r = srm_check(ex["counts"], ex["weights"])
    assert r.chi2 == pytest.approx(ex["chi2"], abs=ex["chi2_tol"])
    assert r.p_value == pytest.approx(ex["p_approx"], rel=ex["p_rel_tol"])
    assert r.srm_detected is True
    sc = SRM["scipy_chisquare_full_precision"]
    r2 = srm_check(sc["counts"], [1, 1])
    assert (r2.chi2, r2.p_value) == pytest.approx((sc["chi2"], sc["p"]), rel=1e-12)


def test_zero_weight_arm_is_dropped_or_hard_srm() -> None:
    r = srm_check([500, 480, 0], [0.5, 0.5, 0.0])
    assert r.df == 1 and not r.srm_detected
    assert r.p_value == pytest.approx(srm_check([500, 480], [1, 1]).p_value)
    hard = srm_check([500, 480, 1], [0.5, 0.5, 0.0])
    assert hard.srm_detected and hard.p_value == 0.0


def test_minimum_count_and_no_data() -> None:
    small = srm_check([7, 1], [0.5, 0.5])
    assert small.error == ErrorCode.INSUFFICIENT_UNITS and not small.srm_detected
    assert srm_check([7, 1], [0.5, 0.5], min_count=1).srm_detected is False  # p ~ 0.034
    assert srm_check([0, 0], [1, 1]).error == ErrorCode.NO_DATA
    with pytest.raises(ValueError):
        srm_check([1, 2], [1.0])


def test_srm_fires_on_corrupted_90_10_split_and_not_on_clean_one() -> None:
    """Seeded simulation: lose 10% of treatment exposures -> SRM; clean split -> no SRM."""
    rng = np.random.default_rng(99)
    n = 50_000
    clean = 0
    for _ in range(200):
        c = int(rng.binomial(n, 0.9))
        clean += srm_check([c, n - c], [0.9, 0.1]).srm_detected
    assert clean <= 2  # expected false-alarm rate 0.1%
    c = int(rng.binomial(n, 0.9))
    t = int(rng.binomial(n - c, 0.90))  # 10% of treatment units dropped by a logging bug
    r = srm_check([c, t], [0.9, 0.1])
    assert r.srm_detected and r.p_value < 1e-6
