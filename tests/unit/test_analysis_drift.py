"""Output-distribution drift: PSI and KS (spec §6.5)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.drift import (
    baseline_edges,
    ks_drift,
    psi,
    psi_categorical,
    psi_from_proportions,
    psi_level,
)
from champion.analysis.errors import ErrorCode

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


DRIFT = VECTORS["drift"]


@pytest.mark.parametrize("case", DRIFT["psi_proportions"], ids=lambda c: str(c["psi"]))
def test_psi_from_proportions_vectors(case: dict[str, Any]) -> None:
    got = psi_from_proportions(case["expected"], case["actual"], eps=case.get("eps", 1e-4))
    assert got == approx(case["psi"], DRIFT["tol"])


def test_psi_and_ks_on_seeded_normal_shift() -> None:
    v = DRIFT["psi_normal_shift"]
    rng = np.random.default_rng(v["seed"])
    base = rng.normal(*v["baseline"], v["n"])  # baseline drawn first, as in the spec
    cand = rng.normal(*v["candidate"], v["n"])
    r = psi(base, cand)
    assert r.value == approx(v["psi"], DRIFT["tol"])
    assert r.level == "none" and len(r.expected) == 10
    assert r.expected == pytest.approx([0.1] * 10)
    assert 0 < r.js_distance < 0.1
    ks = ks_drift(base, cand)
    assert ks.statistic == pytest.approx(v["ks_d"], abs=1e-12)
    assert ks.p_value == pytest.approx(v["ks_p"], rel=v["ks_p_rel_tol"])
    assert not ks.alert  # tiny p but D < 0.1: no alert on p alone


def test_ks_small_exact() -> None:
    v = DRIFT["ks_small"]
    ks = ks_drift(v["baseline"], v["candidate"])
    assert (ks.statistic, ks.p_value) == pytest.approx((v["d"], v["p"]), rel=1e-9)
    big = ks_drift(np.linspace(0, 1, 2000), np.linspace(0.3, 1.3, 2000))
    assert big.alert


def test_psi_levels_and_major_shift() -> None:
    levels = [psi_level(x) for x in (0.05, 0.1, 0.25, 0.3)]
    assert levels == ["none", "moderate", "moderate", "major"]
    rng = np.random.default_rng(3)
    r = psi(rng.normal(0, 1, 4000), rng.normal(1.0, 1, 4000))
    assert r.level == "major"


def test_psi_edge_cases() -> None:
    assert baseline_edges([2.0] * 50) == (-math.inf, 2.0, math.inf)
    const = psi([2.0] * 50, [1.0] * 10 + [2.0] * 40)
    assert const.expected == pytest.approx((0.0, 1.0)) and const.actual == pytest.approx((0.2, 0.8))
    empty = psi([1.0, 2.0], [])
    assert math.isnan(empty.value) and empty.error == ErrorCode.NO_DATA and empty.level == "no_data"
    with_nan = psi([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, float("nan"), 4.0], bins=2)
    assert len(with_nan.actual) == 3 and with_nan.actual[-1] == pytest.approx(0.25)
    assert ks_drift([], [1.0]).error == ErrorCode.NO_DATA


def test_psi_categorical() -> None:
    base = ["a"] * 50 + ["b"] * 50
    cand = ["a"] * 45 + ["b"] * 45 + ["c"] * 10
    r = psi_categorical(base, cand)
    assert r.categories == ("a", "b", "c")
    assert r.value == pytest.approx(psi_from_proportions([0.5, 0.5, 0.0], [0.45, 0.45, 0.1]))
    assert r.value == approx(DRIFT["psi_proportions"][1]["psi"], DRIFT["tol"])
