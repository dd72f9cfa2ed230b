"""Interleaving credit and statistics (analysis/interleave.py) against every credit and
statistics vector of spec §1, from the project's own case file."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from champion.analysis.interleave import (
    MAX_DP_STATES,
    PairCounts,
    balanced_credit,
    holm,
    outcome,
    outcome_matrix,
    preference,
    preference_interval,
    probabilistic_credit,
    probabilistic_q,
    sample_size,
    sign_test,
    team_counts,
    user_level,
)
from champion.routing.interleave import softmax

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "interleave.json").read_text(encoding="utf-8"))
TOL = CASES["tol"]
NAMES = {1: "A", -1: "B", 0: "tie", None: "no_signal"}


def approx(x: float) -> Any:
    return pytest.approx(x, rel=TOL["rel"], abs=TOL["abs"])


def clicks(positions: list[int]) -> dict[int, float]:
    return dict.fromkeys(positions, 1.0)


@pytest.mark.parametrize("case", CASES["team_draft"]["credit"]["cases"],
                         ids=lambda c: str(c["clicks"]))
def test_team_draft_credit_vectors(case: dict[str, Any]) -> None:
    teams = ["AB".index(t) for t in CASES["team_draft"]["credit"]["teams"]]
    counts = team_counts(teams, clicks(case["clicks"]), 2)
    assert counts == case["counts"]
    assert NAMES[outcome(*counts, bool(case["clicks"]))] == case["outcome"]


def test_weighted_team_credit_keeps_the_win_rule() -> None:
    teams = [0, 1, 1, 0, 1]
    counts = team_counts(teams, {0: 29.99, 1: 1.0, 2: 1.0}, 2)
    assert counts == [29.99, 2.0] and outcome(*counts, True) == 1


@pytest.mark.parametrize("case", CASES["balanced"]["credit"]["cases"],
                         ids=lambda c: str(c["clicks"]))
def test_balanced_credit_vectors(case: dict[str, Any]) -> None:
    a, b = CASES["lists"]["A"], CASES["lists"]["B"]
    shown = CASES["balanced"]["credit"]["items"]
    ranks = [(a.index(d) if d in a else None, b.index(d) if d in b else None) for d in shown]
    h = balanced_credit(ranks, clicks(case["clicks"]))
    assert list(h) == case["h"]
    assert NAMES[outcome(*h, True)] == case["outcome"]


def test_balanced_credit_ignores_absent_items_whatever_the_cut() -> None:
    # the lowest click is B's 6th item (absent from A, which is shorter): the other click,
    # also absent from A, must not count for A
    ranks = [(None, 0), (None, 5)]
    assert balanced_credit(ranks, {0: 1.0, 1: 1.0}) == (0.0, 2.0)


@pytest.mark.parametrize("case", CASES["probabilistic"]["credit"]["cases"],
                         ids=lambda c: str(c["clicks"]))
def test_probabilistic_credit_vectors(case: dict[str, Any]) -> None:
    c = CASES["probabilistic"]["credit"]
    tau = CASES["probabilistic"]["tau"]
    remaining = set(c["A"]) | set(c["B"])
    probs = []
    for d in c["shown"]:
        probs.append((softmax(c["A"], remaining, tau).get(d, 0.0),
                      softmax(c["B"], remaining, tau).get(d, 0.0)))
        remaining.discard(d)
    q = probabilistic_q(probs)
    assert q == pytest.approx(c["q"], abs=1e-6)
    p_a, p_b = probabilistic_credit(q, clicks(case["clicks"]))
    assert p_a == pytest.approx(case["p_a"], abs=1e-6)
    assert p_b == pytest.approx(case["p_b"], abs=1e-6)
    assert NAMES[outcome(p_a, p_b, True)] == case["outcome"]


def _brute_force(q: list[float], cl: dict[int, float]) -> tuple[float, float]:
    """Every assignment of the clicked positions, weighted by its posterior."""
    p_a = p_b = 0.0
    positions = sorted(cl)
    for assign in itertools.product((True, False), repeat=len(positions)):
        pr = math.prod(q[p] if a else 1 - q[p] for p, a in zip(positions, assign, strict=True))
        diff = sum(cl[p] if a else -cl[p] for p, a in zip(positions, assign, strict=True))
        if diff > 1e-12:
            p_a += pr
        elif diff < -1e-12:
            p_b += pr
    return p_a, p_b


def test_probabilistic_dp_matches_brute_force_with_weights() -> None:
    q = [0.1, 0.8, 0.5, 0.33, 0.9, 0.6, 0.45]
    for cl in ({0: 1.0, 2: 1.0, 4: 1.0}, {1: 2.5, 3: 1.0, 5: 1.5, 6: 1.0},
               dict.fromkeys(range(7), 1.0)):
        assert probabilistic_credit(q, cl) == pytest.approx(_brute_force(q, cl), abs=1e-12)


def test_probabilistic_credit_stays_bounded_with_many_distinct_weights() -> None:
    q = [0.3 + 0.4 * (i % 3) / 2 for i in range(60)]
    cl = {i: 1.0 + i / 997 for i in range(60)}  # every sum distinct: 2^60 exact states
    p_a, p_b = probabilistic_credit(q, cl)
    assert 0 <= p_a <= 1 and 0 <= p_b <= 1 and p_a + p_b == pytest.approx(1.0)
    assert MAX_DP_STATES < 2 ** 60


def test_multileave_credit_vector() -> None:
    c = CASES["multileave"]["credit"]
    counts = team_counts(c["teams"], clicks(c["clicks"]), 3)
    assert counts == c["counts"]
    assert outcome_matrix(counts) == c["matrix"]


@pytest.mark.parametrize("case", CASES["sign_test"], ids=lambda c: f"{c['wins']}-{c['losses']}")
def test_sign_test_vectors(case: dict[str, Any]) -> None:
    assert sign_test(case["wins"], case["losses"]) == approx(case["p"])
    assert preference(case["wins"], case["losses"], case["ties"]) == approx(case["delta"])
    ci = preference_interval(case["wins"], case["losses"], case["ties"])
    assert ci.estimate == approx(case["delta"]) and ci.low <= ci.estimate <= ci.high


def test_preference_interval_covers_like_a_normal_interval() -> None:
    ci = preference_interval(550, 450, 0)
    assert ci.low == pytest.approx(0.05 - 1.959964 * math.sqrt(0.99 / 999) / 2, rel=1e-5)
    assert preference_interval(0, 0, 0).estimate == 0.0


def test_user_level_vector() -> None:
    ul = CASES["user_level"]
    outcomes = [o for v in ul["users"].values() for o in v]
    imp = PairCounts.of(outcomes)
    assert (imp.wins, imp.losses, imp.ties) == (ul["impressions"]["wins"],
                                                ul["impressions"]["losses"],
                                                ul["impressions"]["ties"])
    assert sign_test(imp.wins, imp.losses) == approx(ul["impressions"]["p"])
    assert preference(imp.wins, imp.losses, imp.ties) == approx(ul["impressions"]["delta"])
    r = user_level(ul["users"])
    exp = ul["users_result"]
    assert (r.units, r.wins, r.losses, r.ties) == (6, exp["wins"], exp["losses"], exp["ties"])
    assert r.sign_p == approx(exp["sign_p"])
    assert r.mean == pytest.approx(exp["mean"], abs=1e-6)
    assert r.t == pytest.approx(exp["t"], abs=1e-6)
    assert r.t_p == pytest.approx(exp["t_p"], abs=1e-6)
    assert r.delta.estimate == pytest.approx(exp["mean"] / 2, abs=1e-6)
    assert r.delta.low < 0 < r.delta.high  # not significant: the interval covers 0
    assert r.error is None and 0 < r.sequential_p <= 1


def test_user_level_degenerate_inputs_are_neutral() -> None:
    assert user_level({}).error == "NO_SIGNAL" and user_level({}).sign_p == 1.0
    assert user_level({"u": [1]}).error == "INSUFFICIENT_UNITS"
    same = user_level({"u": [1], "v": [1, 1]})
    assert same.error == "ZERO_NEGATIVE_VARIANCE" and same.t_p == 1.0
    assert same.sign_p == pytest.approx(0.5)


def test_sample_size_vector_and_its_exact_power() -> None:
    s = CASES["sample_size"]
    n = sample_size(s["win_rate"], s["alpha"], s["power"])
    assert n == approx(s["n"]) and math.ceil(n) == s["n_ceil"]
    n_ = s["n_ceil"]
    ks = np.arange(n_ + 1)
    # the two-sided binomial p-value at 1/2 (symmetric), for every count at once
    p_two = np.minimum(1.0, 2 * np.minimum(stats.binom.cdf(ks, n_, 0.5),
                                           stats.binom.sf(ks - 1, n_, 0.5)))
    assert p_two[400] == pytest.approx(stats.binomtest(400, n_, 0.5).pvalue)
    power = stats.binom.pmf(ks[p_two < s["alpha"]], n_, s["win_rate"]).sum()
    assert power == pytest.approx(s["exact_power_at_n"], abs=1e-9)
    with pytest.raises(ValueError):
        sample_size(0.5)


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([]) == []
    assert holm([0.4, 0.2]) == pytest.approx([0.4, 0.4])
