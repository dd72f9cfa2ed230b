"""Bandit statistics and the batched allocation (spec §4), against the case file's vectors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats

from champion.analysis.bandit_policy import (
    ALGORITHMS,
    OUT_OF_RANGE,
    ArmStats,
    PolicyConfig,
    allocate,
)
from champion.analysis.bandits import (
    BetaPosteriors,
    LinUCB,
    best_shares,
    d_ucb_index,
    discounted_beta,
    discounted_stats,
    epsilon_at,
    epsilon_auer,
    epsilon_shares,
    greedy_shares,
    lai_robbins,
    linucb_alpha,
    nig_posterior,
    period_weighted_means,
    prob_best_beta,
    prob_best_t,
    prob_near_best,
    pseudo_regret,
    sample_beta,
    sw_ucb_index,
    ucb1_index,
    ucb1_regret_bound,
    ucb_shares,
    weight_floor,
    window_stats,
)

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "bandit.json").read_text(encoding="utf-8"))
TOL = CASES["tol"]["abs"]
HISTORY = CASES["non_stationary_history"]
ARMS = [a for a, _ in HISTORY]
REWARDS = [float(r) for _, r in HISTORY]


def close(expected: Any) -> Any:
    return pytest.approx(expected, abs=TOL)


# --------------------------------------------------------------------------- §4.1 - §4.4


@pytest.mark.parametrize("case", CASES["ucb1"], ids=lambda c: c["name"])
def test_ucb1_indices(case: dict[str, Any]) -> None:
    index = ucb1_index(case["sums"], case["counts"], case["t"])
    for got, want in zip(index, case["index"], strict=True):
        if want == "inf":
            assert got == math.inf
        elif want is not None:
            assert got == close(want)
    assert int(np.argmax(index)) == case["choice"]


@pytest.mark.parametrize("case", CASES["prob_best_beta"], ids=lambda c: c["name"])
def test_probability_of_being_best_by_quadrature(case: dict[str, Any]) -> None:
    p = prob_best_beta(case["alpha"], case["beta"])
    assert p == close(case["p"])
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    mc = case.get("monte_carlo")
    if mc:
        draws = sample_beta(case["alpha"], case["beta"], mc["draws"],
                            np.random.default_rng(mc["seed"]))
        assert best_shares(draws) == pytest.approx(mc["p"], abs=mc["band"])


def test_probability_of_being_best_for_student_posteriors_matches_adaptive_quadrature() -> None:
    loc, scale, df = [1.0, 1.1, 1.05], [0.1, 0.05, 0.2], [4.0, 30.0, 8.0]
    p = prob_best_t(loc, scale, df)
    for i in range(3):
        def f(x: float, i: int = i) -> float:
            out = stats.t.pdf(x, df[i], loc[i], scale[i])
            for j in range(3):
                if j != i:
                    out *= stats.t.cdf(x, df[j], loc[j], scale[j])
            return float(out)
        want, _ = integrate.quad(f, -np.inf, np.inf, limit=500)
        assert p[i] == pytest.approx(want, abs=2e-6)


def test_probability_of_being_best_stays_accurate_for_concentrated_posteriors() -> None:
    # 10 million rewards an arm: narrow posteriors, far from each other's
    p = prob_best_beta([1e7, 1e7 + 3000], [1e7, 1e7])
    a, b = 1e7, 1e7 + 3000
    sd = math.sqrt(0.25 / (2e7)) * math.sqrt(2)
    assert p[1] == pytest.approx(stats.norm.cdf((b / (a + 1e7 + 3000) - 0.5) / sd), abs=1e-3)
    assert prob_best_beta([1, 1, 1], [1, 1, 1]) == close([1 / 3] * 3)
    assert prob_best_beta([5], [3]) == close([1.0])


def test_normal_inverse_gamma_posterior() -> None:
    c = CASES["nig"]
    x = np.asarray(c["x"])
    prior = c["prior"]
    post = nig_posterior(x.size, float(x.sum()), float((x * x).sum()), prior["mu"],
                         prior["kappa"], prior["a"], prior["b"])
    assert post.mu == close(c["mu_n"])
    assert post.kappa == close(c["kappa_n"])
    assert post.a == close(c["a_n"])
    assert post.b == close(c["b_n"])
    assert post.scale == close(c["t_scale"])
    draws = post.sample(200_000, np.random.default_rng(1))
    assert draws.mean() == pytest.approx(post.mu, abs=0.002)
    assert np.std(draws) == pytest.approx(post.scale * math.sqrt(post.df / (post.df - 2)),
                                          rel=0.02)


def test_epsilon_schedules() -> None:
    c = CASES["epsilon_auer"]
    assert [round(epsilon_auer(t, c["k"], c["c"], c["d"]), 4) for t in c["t"]] == c["epsilon"]
    assert epsilon_at("constant", 5000, 3, epsilon=0.1) == 0.1
    assert epsilon_at("exponential", 0, 3, epsilon=0.5, decay=0.99, minimum=0.01) == 0.5
    assert epsilon_at("exponential", 1000, 3, epsilon=0.5, decay=0.99, minimum=0.01) == 0.01
    with pytest.raises(ValueError, match="unknown epsilon schedule"):
        epsilon_at("linear", 1, 3)


def test_sliding_window_ucb() -> None:
    c = CASES["sw_ucb"]
    n, s = window_stats(ARMS, REWARDS, 2, c["tau"])
    assert list(n) == c["counts"] and list(s) == c["sums"]
    assert sw_ucb_index(s, n, len(HISTORY), c["tau"], c["xi"], c["scale"]) == close(c["index"])
    assert sw_ucb_index([0, 1], [0, 2], 8, 4)[0] == math.inf


def test_discounted_ucb() -> None:
    c = CASES["d_ucb"]
    n, s, _ = discounted_stats(ARMS, REWARDS, 2, c["gamma"])
    assert n == close(c["counts"]) and s == close(c["sums"])
    assert d_ucb_index(s, n, c["xi"], c["scale"]) == close(c["index"])


def test_discounted_thompson_sampling() -> None:
    c = CASES["d_ts"]
    alpha, beta = discounted_beta(ARMS, REWARDS, 2, c["gamma"], *c["prior"])
    assert alpha == close(c["alpha"]) and beta == close(c["beta"])
    # the same as decaying every arm at every step (the paper's formulation)
    a, b = np.zeros(2), np.zeros(2)
    for arm, r in HISTORY:
        a, b = a * c["gamma"], b * c["gamma"]
        a[arm] += r
        b[arm] += 1 - r
    assert alpha == close(a + 1) and beta == close(b + 1)


def test_weight_floor() -> None:
    c = CASES["weight_floor"]
    assert weight_floor(c["weights"], c["floor"]) == close(c["p"])
    assert weight_floor([1, 0, 0], 0.4) == close([1 / 3] * 3)  # K f >= 1: uniform
    assert weight_floor([0, 0], 0.01) == close([0.5, 0.5])


def test_linucb() -> None:
    c = CASES["linucb"]
    model = LinUCB(c["k"], c["d"], c["alpha"])
    for step in c["steps"]:
        assert model.scores(step["x"]) == close(step["scores"])
        assert model.choose(step["x"]) == step["choice"]
        model.update(step["update_arm"], step["x"], step["reward"])
    assert model.scores(c["final"]["x"]) == close(c["final"]["scores"])
    assert linucb_alpha(c["alpha_for_delta"]["delta"]) == close(c["alpha_for_delta"]["alpha"])


def test_regret_and_its_bounds() -> None:
    c = CASES["regret_bounds"]
    assert ucb1_regret_bound(c["p"], c["T"]) == pytest.approx(c["ucb1_bound"], abs=c["abs"])
    assert lai_robbins(c["p"], c["T"]) == pytest.approx(c["lai_robbins"], abs=c["abs"])
    uniform = pseudo_regret(c["p"], [c["T"] / 3] * 3)
    assert uniform == pytest.approx(c["uniform"])


# --------------------------------------------------------------------------- batched forms


def sequential_ucb(q: np.ndarray, n: np.ndarray, c: float, batch: int) -> np.ndarray:
    """One pull at a time, each imputed at its arm's mean (Q stays, N grows)."""
    n = n.astype(float).copy()
    pulls = np.zeros_like(n)
    for _ in range(batch):
        a = int(np.argmax(q + np.sqrt(c / n)))
        n[a] += 1
        pulls[a] += 1
    return pulls / batch


@pytest.mark.parametrize("q,n", [
    ([0.3, 0.4, 0.5], [120, 130, 150]),
    ([0.52, 0.5, 0.49, 0.3], [400, 40, 40, 900]),
    ([0.5, 0.5], [10, 1000]),
])
def test_ucb_batch_shares_are_the_sequential_rule_with_optimistic_pending_counts(q, n) -> None:
    q, n = np.asarray(q), np.asarray(n, dtype=float)
    c = 2 * math.log(n.sum() + 2000)
    shares = ucb_shares(q, n, c, 2000)
    assert shares.sum() == pytest.approx(1.0)
    assert shares == pytest.approx(sequential_ucb(q, n, c, 2000), abs=0.01)


def test_ucb_batch_shares_play_every_arm_first_and_split_ties() -> None:
    assert list(ucb_shares(np.array([0.9, 0.0, 0.0]), np.array([10.0, 0.0, 0.0]), 5.0, 100)
                ) == [0.0, 0.5, 0.5]
    assert ucb_shares(np.array([0.5, 0.5]), np.array([30.0, 30.0]), 7.0, 0) == close([0.5, 0.5])
    assert greedy_shares(np.array([0.2, 0.7, 0.7])) == close([0.0, 0.5, 0.5])


def test_epsilon_greedy_shares() -> None:
    assert epsilon_shares(np.array([0.1, 0.5, 0.3]), 0.1) == close([1 / 30, 0.9 + 1 / 30,
                                                                   1 / 30])
    # Seldon's router: epsilon over the other arms only
    assert epsilon_shares(np.array([0.1, 0.5, 0.3]), 0.1, True) == close([0.05, 0.9, 0.05])


def test_period_weighted_means_undo_a_time_varying_mix() -> None:
    # two identical arms; rewards are higher in period 2, when arm 0 got 90 % of traffic
    n = np.array([[500, 500], [900, 100]], dtype=float)
    s = np.array([[100, 100], [540, 60]], dtype=float)  # 0.2 then 0.6 for both
    ss = s.copy()
    naive = s.sum(axis=0) / n.sum(axis=0)
    assert naive[0] - naive[1] > 0.1  # Simpson: arm 0 looks better
    weighted = period_weighted_means(n, s, ss)
    assert weighted[0].mean == pytest.approx(weighted[1].mean)
    assert weighted[0].mean == pytest.approx(0.4)
    low, high = weighted[1].ci()
    assert low is not None and high is not None and low < 0.4 < high
    assert period_weighted_means(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))[0
                                                                                      ].mean is None


def test_near_best_weights_treat_arms_closer_than_the_indifference_alike() -> None:
    same = BetaPosteriors(np.array([2001.0] * 3), np.array([2001.0] * 3))
    assert prob_near_best(same, 3, 0.05) == pytest.approx([1.0] * 3, abs=1e-4)
    apart = BetaPosteriors(np.array([301.0, 401, 501]), np.array([701.0, 601, 501]))
    assert prob_near_best(apart, 3, 0.02) == pytest.approx([0, 0, 1], abs=1e-3)


# --------------------------------------------------------------------------- the allocation


def arm_stats(n: list[float], s: list[float], **kw: Any) -> ArmStats:
    k = len(n)
    lo = [0.0 if x else math.nan for x in n]
    hi = [1.0 if x else math.nan for x in n]
    return ArmStats.from_arrays(n, s, lo=np.array(kw.pop("lo", lo)),
                                hi=np.array(kw.pop("hi", hi)),
                                window_n=np.array(n, float), window_s=np.array(s, float),
                                window_ss=np.array(s, float), disc_n=np.array(n, float),
                                disc_s=np.array(s, float), disc_ss=np.array(s, float),
                                pending=np.zeros(k), **kw)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_allocation_is_a_distribution_with_the_floor(algorithm: str) -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        k = int(rng.integers(2, 6))
        n = rng.integers(100, 2000, k).astype(float)
        s = np.floor(n * rng.uniform(0.1, 0.9, k))
        a = allocate(PolicyConfig(algorithm=algorithm, floor=0.02), arm_stats(list(n), list(s)),
                     batch=500)
        assert a.shares.sum() == pytest.approx(1.0)
        assert (a.shares >= 0.02 - 1e-12).all(), a.shares
        assert a.phase == "adaptive"
        assert np.nansum(a.prob_best) == pytest.approx(1.0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_identical_arms_get_identical_shares(algorithm: str) -> None:
    a = allocate(PolicyConfig(algorithm=algorithm), arm_stats([500] * 4, [250] * 4), batch=300)
    assert a.shares == close([0.25] * 4)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_arm_gets_everything(algorithm: str) -> None:
    a = allocate(PolicyConfig(algorithm=algorithm), arm_stats([0], [0]))
    assert list(a.shares) == [1.0] and a.phase == "single"
    removed = allocate(PolicyConfig(algorithm=algorithm),
                       arm_stats([300, 300], [10, 290], active=np.array([True, False])))
    assert list(removed.shares) == [1.0, 0.0]


def test_uniform_until_every_arm_has_its_minimum_then_new_arms_explore() -> None:
    config = PolicyConfig(min_obs=100)
    start = allocate(config, arm_stats([99, 150, 400], [10, 100, 300]))
    assert start.phase == "uniform" and start.shares == close([1 / 3] * 3)
    assert allocate(config, arm_stats([20, 30, 40], [1, 20, 30])).shares == close([1 / 3] * 3)
    added = np.array([False, False, True])
    later = allocate(config, arm_stats([1000, 1000, 0], [300, 600, 0], added=added))
    assert later.phase == "exploring"
    assert later.shares[2] == pytest.approx(1 / 3) and later.shares[1] > 0.6
    short_original = allocate(config, arm_stats([1000, 99, 0], [300, 60, 0], added=added))
    assert short_original.phase == "uniform"


def test_gaussian_rewards_use_normal_inverse_gamma_posteriors() -> None:
    rng = np.random.default_rng(4)
    x = [rng.normal(m, 2.0, 300) for m in (10.0, 10.5, 11.0)]
    st = ArmStats.from_arrays([300] * 3, [float(v.sum()) for v in x],
                              [float((v * v).sum()) for v in x], binary=False,
                              lo=np.array([v.min() for v in x]),
                              hi=np.array([v.max() for v in x]))
    a = allocate(PolicyConfig(), st)
    assert a.family == "gaussian" and a.shares[2] > a.shares[0]
    assert a.means == pytest.approx([v.mean() for v in x], abs=1e-3)
    # Beta or UCB need rewards in range: frozen with an error, or rescaled when configured
    frozen = allocate(PolicyConfig(family="binary"), st, previous=np.array([0.2, 0.3, 0.5]))
    assert frozen.error == OUT_OF_RANGE and list(frozen.shares) == [0.2, 0.3, 0.5]
    ucb = allocate(PolicyConfig(algorithm="ucb1"), st)
    assert ucb.error == OUT_OF_RANGE
    ranged = allocate(PolicyConfig(algorithm="ucb1", low=-10.0, high=30.0), st, batch=100)
    assert ranged.error is None and ranged.shares.sum() == pytest.approx(1.0)


def test_the_same_seed_gives_the_same_decisions() -> None:
    from champion.analysis.bandit_sim import simulate, simulate_batched

    a = simulate("thompson", [0.3, 0.5], 500, 4, np.random.default_rng(9))
    b = simulate("thompson", [0.3, 0.5], 500, 4, np.random.default_rng(9))
    assert (a.pulls == b.pulls).all()
    config = PolicyConfig(top_two=True, min_obs=10, nodes=100)
    c = simulate_batched(config, [0.3, 0.5], 500, 100, 2, np.random.default_rng(9))
    d = simulate_batched(config, [0.3, 0.5], 500, 100, 2, np.random.default_rng(9))
    assert (c.pulls == d.pulls).all()
