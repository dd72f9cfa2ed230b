"""Sequential testing that survives continuous peeking (spec §2.6)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from champion.analysis.errors import ErrorCode
from champion.analysis.sequential import (
    SequentialMonitor,
    cs_half_width,
    cs_half_width_one_sided,
    eppo_half_width,
    eppo_rho,
    msprt_likelihood_ratio,
    sequential_compare,
    sequential_p_value,
    sequential_rho,
    sequential_test,
)
from champion.analysis.summary import MeanStats, ProportionStats
from champion.analysis.ttest import welch_ttest

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


SEQ = VECTORS["sequential"]

# A/A simulation parameters (reported in the hand-off): seeded, peeking every 100 units.
AA_SEED = 20240611
AA_SIMS = 2000
AA_HORIZON = 10_000
AA_STEP = 100
ALPHA = 0.05
N_STAR = 5000


def _welch_vector_2_se() -> float:
    c = MeanStats.from_moments(10000, 10.0, 5.0)
    t = MeanStats.from_moments(10000, 10.2, 5.2)
    return welch_ttest(c, t).absolute.se


def test_sequential_vectors() -> None:
    tol, exp = SEQ["tol"], SEQ["expected"]
    se, n, est = _welch_vector_2_se(), SEQ["n"], SEQ["estimate"]
    alpha, n_star = SEQ["alpha"], SEQ["n_star"]
    assert sequential_rho(alpha, n_star) == approx(exp["rho"], tol)
    assert cs_half_width(se, n, alpha, n_star) == approx(exp["half_width"], tol)
    assert 1.959964 * se == approx(exp["fixed_half_width"], tol)
    r = sequential_test(est, se, n, alpha=alpha, n_star=n_star)
    assert list(r.ci) == approx(exp["cs"], tol)
    assert r.p_value == approx(exp["p"], tol)
    assert not r.significant  # although the fixed-horizon p is 0.0056
    assert welch_ttest(
        MeanStats.from_moments(10000, 10.0, 5.0), MeanStats.from_moments(10000, 10.2, 5.2)
    ).absolute.p_value == approx(exp["fixed_p"], tol)
    tau2 = sequential_rho(alpha, n_star) ** 2 * se**2 * n
    assert tau2 == approx(exp["tau2"], tol)
    lam = msprt_likelihood_ratio(est, se**2, tau2)
    assert lam == approx(exp["lambda"], tol)
    assert min(1.0, 1.0 / lam) == pytest.approx(r.p_value, rel=1e-12)
    assert eppo_rho(5000, alpha) == approx(exp["eppo_rho_5000"], tol)
    assert eppo_rho(5000, alpha) == pytest.approx(1 / sequential_rho(alpha, 5000) ** 2, rel=1e-12)
    assert eppo_half_width(se, n, alpha, 5000) == approx(exp["eppo_half_width_5000"], tol)
    assert eppo_half_width(se, n, alpha, 10000) == approx(exp["eppo_half_width_10000"], tol)


@pytest.mark.parametrize("n,ratio", SEQ["width_ratios"])
def test_width_ratio_vectors(n: int, ratio: float) -> None:
    se = 1 / math.sqrt(n)
    got = cs_half_width(se, n, SEQ["alpha"], SEQ["n_star"]) / (SEQ["width_ratio_z"] * se)
    assert got == approx(ratio, SEQ["width_ratio_tol"])


def test_p_value_and_interval_are_dual() -> None:
    se, n = 0.05, 4000
    hw = cs_half_width(se, n)
    assert sequential_p_value(hw * 1.0001, se, n) < ALPHA < sequential_p_value(hw * 0.9999, se, n)


def test_one_sided_half_width() -> None:
    se, n = 0.05, 4000
    one = cs_half_width_one_sided(se, n)
    assert 0 < one < cs_half_width(se, n)
    with pytest.raises(ValueError):
        cs_half_width_one_sided(se, n, alpha=0.5)


def test_degenerate_outputs() -> None:
    r = sequential_test(0.3, 0.0, 100)
    assert r.error == ErrorCode.ZERO_NEGATIVE_VARIANCE and r.p_value == 1.0 and r.ci == (0, 0)
    assert sequential_test(0.3, 0.1, 0).error == ErrorCode.INSUFFICIENT_UNITS
    rel = sequential_compare(ProportionStats(100, 0), ProportionStats(100, 5), relative=True)
    assert rel.error == ErrorCode.BASELINE_ZERO


def test_monitor_keeps_running_minimum() -> None:
    mon = SequentialMonitor()
    first = mon.update(sequential_test(0.3, 0.1, 1000))
    second = mon.update(sequential_test(0.0, 0.1, 2000))
    assert second.p_value == first.p_value < 1.0
    assert mon.looks == 2


def _cumulative(
    arm: npt.NDArray[np.bool_], y: npt.NDArray[np.float64], idx: npt.NDArray[np.int64]
) -> list[tuple[MeanStats, MeanStats]]:
    out = []
    parts = []
    for mask in (~arm, arm):
        v = np.where(mask, y, 0.0)
        parts.append((np.cumsum(mask)[idx], np.cumsum(v)[idx], np.cumsum(v * v)[idx]))
    (nc, sc, qc), (nt, st, qt) = parts
    for k in range(idx.size):
        out.append(
            (
                MeanStats(int(nc[k]), float(sc[k]), float(qc[k])),
                MeanStats(int(nt[k]), float(st[k]), float(qt[k])),
            )
        )
    return out


Draw = Callable[[np.random.Generator, npt.NDArray[np.bool_]], npt.NDArray[np.float64]]


def _simulate(rng: np.random.Generator, sims: int, draw: Draw) -> tuple[float, float, list[int]]:
    """Sequential rejection rate, naive-peeking rejection rate and stopping sizes."""
    idx = np.arange(AA_STEP, AA_HORIZON + 1, AA_STEP) - 1
    seq_rejects = naive_rejects = 0
    stops: list[int] = []
    for _ in range(sims):
        arm = rng.random(AA_HORIZON) < 0.5
        y = draw(rng, arm)
        mon = SequentialMonitor(alpha=ALPHA)
        naive = False
        for c, t in _cumulative(arm, y, idx):
            r = mon.update(sequential_compare(c, t, alpha=ALPHA, n_star=N_STAR))
            naive = naive or (r.se > 0 and abs(r.estimate / r.se) > 1.959964)
        seq_rejects += mon.rejected
        naive_rejects += naive
        if mon.stopped_at is not None:
            stops.append(mon.stopped_at)
    return seq_rejects / sims, naive_rejects / sims, stops


def test_aa_false_positive_rate_with_peeking_every_100_units() -> None:
    """A/A, N(0, 1) metric, 50/50 random split, look every 100 units up to 10,000 units."""
    rng = np.random.default_rng(AA_SEED)
    fpr, naive, _ = _simulate(rng, AA_SIMS, lambda g, arm: g.normal(0.0, 1.0, arm.size))
    print(f"A/A sequential FPR = {fpr:.4f} (naive peeking {naive:.4f})")
    assert fpr <= ALPHA
    assert naive > 0.2  # peeking at a fixed-horizon test is badly inflated


def test_aa_false_positive_rate_conversions() -> None:
    rng = np.random.default_rng(AA_SEED + 1)
    fpr, _, _ = _simulate(rng, 500, lambda g, arm: (g.random(arm.size) < 0.1).astype(float))
    assert fpr <= ALPHA


def test_sequential_detects_three_point_lift_early() -> None:
    """10% -> 13% conversion: rejected in >= 90% of runs, usually well before the horizon."""
    rng = np.random.default_rng(AA_SEED + 2)

    def draw(g: np.random.Generator, arm: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        return (g.random(arm.size) < np.where(arm, 0.13, 0.10)).astype(float)

    power, _, stops = _simulate(rng, 200, draw)
    assert power >= 0.9
    assert np.median(stops) < 0.8 * AA_HORIZON
