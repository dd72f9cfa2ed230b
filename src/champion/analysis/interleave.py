"""Interleaving credit and statistics (spec §1.2-§1.7).

Per impression, the clicks (positions, each with a weight: 1 for a plain click, or e.g. a
purchase value) are credited to the lists:

* team draft and multileaving: each list gets the weight of the clicks on the positions it
  drafted (:func:`team_counts`);
* balanced: Joachims' rule on the lowest click (:func:`balanced_credit`);
* probabilistic: the exact expectation over every assignment that could have produced the
  shown list, by a dynamic programme over the clicks (:func:`probabilistic_credit`).

An impression's outcome between two lists is +1 (the first preferred), -1 (the second), 0
(a tie) or None (no click: no signal). Over impressions: the preference
``Δ = (wins + ties/2) / (wins + losses + ties) - 1/2`` with its interval, the binomial sign
test (ties excluded), and the user-level analysis, the default decision because one user's
impressions are not independent: per user the mean outcome, then a sign test on its sign
and a one-sample t-test on its mean (:func:`user_level`). :func:`sample_size` is the number
of decisive impressions (or users) the sign test needs; :func:`holm` corrects the p-values
of multileaving's pairs. Degenerate data gives neutral numbers with an error code (§0.3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from champion.analysis._lazy import stats
from champion.analysis.errors import NEUTRAL_P_VALUE, ErrorCode
from champion.analysis.sequential import DEFAULT_N_STAR, sequential_p_value

#: Above this many distinct sums the probabilistic credit's DP switches to a normal
#: approximation (distinct click weights can double the states per click).
MAX_DP_STATES = 4096
_EPS = 1e-12

Clicks = Mapping[int, float]  # position -> weight (> 0)


# --------------------------------------------------------------------------- credit


def outcome(first: float, second: float, any_click: bool) -> int | None:
    """+1 when the first list earned more credit, -1 the second, 0 a tie, None no click."""
    if not any_click:
        return None
    if first > second + _EPS:
        return 1
    if second > first + _EPS:
        return -1
    return 0


def team_counts(teams: Sequence[int], clicks: Clicks, m: int) -> list[float]:
    """Per list ``j < m``: the weight of the clicks on the positions team ``j`` drafted."""
    counts = [0.0] * m
    for position, weight in clicks.items():
        team = teams[position]
        if 0 <= team < m:
            counts[team] += weight
    return counts


def outcome_matrix(counts: Sequence[float]) -> list[list[int]]:
    """Multileaving's per-impression matrix: ``O[i][j] = 1`` when list i beat list j."""
    return [[1 if i != j and counts[i] > counts[j] + _EPS else 0 for j in range(len(counts))]
            for i in range(len(counts))]


def balanced_credit(ranks: Sequence[Sequence[int | None]], clicks: Clicks
                    ) -> tuple[float, float]:
    """Joachims' credit (spec §1.2) from each shown item's rank in the two lists (None:
    absent): with ``d`` the lowest clicked item and ``k* = min(rank_A(d), rank_B(d))``, each
    list gets the clicks on its top ``k* + 1`` items."""
    if not clicks:
        return 0.0, 0.0
    lowest = ranks[max(clicks)]
    cut = min(r for r in lowest[:2] if r is not None)

    def within(rank: int | None) -> bool:
        return rank is not None and rank <= cut

    h_a = sum(w for p, w in clicks.items() if within(ranks[p][0]))
    h_b = sum(w for p, w in clicks.items() if within(ranks[p][1]))
    return float(h_a), float(h_b)


def probabilistic_q(probs: Sequence[Sequence[float]]) -> list[float]:
    """Per shown position: the posterior probability that list A placed it,
    ``P_A / (P_A + P_B)`` (0.5 when both are 0), spec §1.4."""
    out = []
    for pa, pb in probs:
        out.append(pa / (pa + pb) if pa + pb > 0 else 0.5)
    return out


def probabilistic_credit(q: Sequence[float], clicks: Clicks) -> tuple[float, float]:
    """``(P(A wins), P(B wins))``: the distribution of ``c_A - c_B``, a sum of independent
    ``±w`` over the clicked positions, computed exactly (O(#clicks²) for equal weights)."""
    dist: dict[float, float] = {0.0: 1.0}
    mean = var = 0.0
    exact = True
    for position in sorted(clicks):
        w, qa = clicks[position], q[position]
        mean += w * (2 * qa - 1)
        var += 4 * w * w * qa * (1 - qa)
        if not exact:
            continue
        nxt: dict[float, float] = {}
        for s, p in dist.items():
            for v, pv in ((round(s + w, 9), p * qa), (round(s - w, 9), p * (1 - qa))):
                if pv > 0:
                    nxt[v] = nxt.get(v, 0.0) + pv
        dist = nxt
        if len(dist) > MAX_DP_STATES:
            exact = False
    if exact:
        p_a = sum(p for s, p in dist.items() if s > _EPS)
        p_b = sum(p for s, p in dist.items() if s < -_EPS)
        return p_a, p_b
    sd = math.sqrt(var)
    if sd == 0:
        return (1.0, 0.0) if mean > 0 else (0.0, 1.0) if mean < 0 else (0.0, 0.0)
    p_b = float(stats.norm.cdf(-mean / sd))
    return 1.0 - p_b, p_b


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def sign_test(wins: int, losses: int) -> float:
    """Two-sided binomial sign test of ``wins`` against ``wins + losses`` at 1/2 (ties are
    left out); 1 when there is nothing decisive."""
    n = wins + losses
    if n <= 0:
        return NEUTRAL_P_VALUE
    return float(stats.binomtest(wins, n, 0.5, alternative="two-sided").pvalue)


def preference(wins: int, losses: int, ties: int) -> float:
    """``Δ = (wins + ties/2) / (wins + losses + ties) - 1/2``: positive, the first is
    preferred (Chapelle et al. 2012). 0 with no impressions."""
    n = wins + losses + ties
    return (wins + 0.5 * ties) / n - 0.5 if n > 0 else 0.0


def preference_interval(wins: int, losses: int, ties: int, alpha: float = 0.05) -> Interval:
    """Δ with a normal-approximation interval: Δ is half the mean outcome (+1, -1, 0)."""
    n = wins + losses + ties
    delta = preference(wins, losses, ties)
    if n < 2:
        return Interval(delta, delta, delta)
    mean = (wins - losses) / n
    var = max((wins + losses) / n - mean * mean, 0.0) * n / (n - 1)
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(var / n) / 2
    return Interval(delta, delta - half, delta + half)


@dataclass(frozen=True)
class PairCounts:
    """Impressions with signal between two lists: the first won, lost, tied."""

    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    @classmethod
    def of(cls, outcomes: Iterable[int | None]) -> PairCounts:
        w = lo = t = 0
        for o in outcomes:
            if o is None:
                continue
            if o > 0:
                w += 1
            elif o < 0:
                lo += 1
            else:
                t += 1
        return cls(w, lo, t)


@dataclass(frozen=True)
class UserLevel:
    """The user-level analysis (spec §1.7): per user the mean outcome ``pref_u``."""

    units: int
    wins: int  # users with pref_u > 0
    losses: int
    ties: int
    sign_p: float
    mean: float  # mean of pref_u, in [-1, 1]
    t: float
    t_p: float
    delta: Interval  # mean / 2: the preference on the scale of Δ, with its t interval
    sequential_p: float  # always-valid p-value of the mean (safe when checked repeatedly)
    error: str | None = None


def user_level(per_user: Mapping[str, Sequence[int]], alpha: float = 0.05,
               n_star: float = DEFAULT_N_STAR) -> UserLevel:
    """The user-level tests over each user's impression outcomes (+1, -1, 0; impressions
    without signal left out beforehand). Users with no outcome are ignored."""
    prefs = [sum(v) / len(v) for v in per_user.values() if len(v) > 0]
    n = len(prefs)
    wins = sum(1 for p in prefs if p > _EPS)
    losses = sum(1 for p in prefs if p < -_EPS)
    ties = n - wins - losses
    sign_p = sign_test(wins, losses)
    if n == 0:
        return UserLevel(0, 0, 0, 0, sign_p, 0.0, 0.0, NEUTRAL_P_VALUE,
                         Interval(0.0, 0.0, 0.0), NEUTRAL_P_VALUE, ErrorCode.NO_SIGNAL.value)
    mean = sum(prefs) / n
    if n < 2:
        return UserLevel(n, wins, losses, ties, sign_p, mean, 0.0, NEUTRAL_P_VALUE,
                         Interval(mean / 2, mean / 2, mean / 2), NEUTRAL_P_VALUE,
                         ErrorCode.INSUFFICIENT_UNITS.value)
    var = sum((p - mean) ** 2 for p in prefs) / (n - 1)
    if var <= 0:
        return UserLevel(n, wins, losses, ties, sign_p, mean, 0.0, NEUTRAL_P_VALUE,
                         Interval(mean / 2, mean / 2, mean / 2), NEUTRAL_P_VALUE,
                         ErrorCode.ZERO_NEGATIVE_VARIANCE.value)
    se = math.sqrt(var / n)
    t = mean / se
    t_p = float(2 * stats.t.sf(abs(t), n - 1))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se / 2
    seq_p = sequential_p_value(mean, se, n, alpha, n_star)
    return UserLevel(n, wins, losses, ties, sign_p, mean, t, t_p,
                     Interval(mean / 2, mean / 2 - half, mean / 2 + half), seq_p)


def sample_size(win_rate: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Decisive impressions (or users) the sign test needs to detect ``win_rate`` against
    1/2: ``((z(1-alpha/2)/2 + z(power)·sqrt(p(1-p))) / (p - 1/2))²`` (spec §1.7; the normal
    approximation is slightly optimistic, pad by about 2 %)."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power are in (0, 1)")
    if not 0 < win_rate < 1 or win_rate == 0.5:
        raise ValueError("the win rate is in (0, 1) and not 1/2")
    za = float(stats.norm.ppf(1 - alpha / 2))
    zb = float(stats.norm.ppf(power))
    p = win_rate
    return float(((za * 0.5 + zb * math.sqrt(p * (1 - p))) / (p - 0.5)) ** 2)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# --------------------------------------------------------------------------- per impression


def pair_outcomes(method: str, teams: Sequence[int], m: int, clicks: Clicks, *,
                  probs: Sequence[Sequence[float]] = (),
                  ranks: Sequence[Sequence[int | None]] = ()
                  ) -> dict[tuple[int, int], tuple[int | None, float]]:
    """One impression's outcome for every pair of its ``m`` lists ``(i, j)``, ``i < j``: list
    i against list j (+1, -1, 0 or None without signal) and the expected outcome
    (probabilistic: ``P(i wins) - P(j wins)``; otherwise the outcome, 0 without signal).

    ``method`` is ``team_draft`` (also multileaving), ``balanced`` (``ranks`` of each shown
    item in both lists) or ``probabilistic`` (``probs``: each list's probability for each
    shown item). Only clicks with a weight above 0 count. With more than two lists, a pair
    has signal when either of its teams got a click (spec §1.5).
    """
    clicks = {p: w for p, w in clicks.items() if w > 0}
    if method == "balanced":
        h_a, h_b = balanced_credit(ranks, clicks)
        o = outcome(h_a, h_b, bool(clicks))
        return {(0, 1): (o, float(o or 0))}
    if method == "probabilistic":
        p_a, p_b = probabilistic_credit(probabilistic_q(probs), clicks)
        o = outcome(p_a, p_b, bool(clicks))
        return {(0, 1): (o, p_a - p_b if clicks else 0.0)}
    counts = team_counts(teams, clicks, m)
    out: dict[tuple[int, int], tuple[int | None, float]] = {}
    for i in range(m):
        for j in range(i + 1, m):
            o = outcome(counts[i], counts[j], counts[i] > 0 or counts[j] > 0)
            out[(i, j)] = (o, float(o or 0))
    return out


@dataclass(frozen=True)
class PairSummary:
    """Everything the report says about one pair: the first against the second."""

    counts: PairCounts  # impressions with signal
    sign_p: float  # impression-level sign test
    delta: Interval  # impression-level preference
    users: UserLevel  # the user-level analysis (the default decision)
    impressions: UserLevel  # the same tests with every impression its own unit
    expected: float | None  # mean expected outcome (probabilistic), else None


def summarise_pair(outcomes: Sequence[tuple[str, int]], alpha: float = 0.05,
                   n_star: float = DEFAULT_N_STAR, expected: Sequence[float] | None = None
                   ) -> PairSummary:
    """The pair's statistics from ``(unit, outcome)`` of its impressions with signal."""
    counts = PairCounts.of(o for _, o in outcomes)
    per_user: dict[str, list[int]] = {}
    for unit, o in outcomes:
        per_user.setdefault(unit, []).append(o)
    per_impression = {str(i): [o] for i, (_, o) in enumerate(outcomes)}
    mean_expected = (sum(expected) / len(expected)) if expected else None
    return PairSummary(counts, sign_test(counts.wins, counts.losses),
                       preference_interval(counts.wins, counts.losses, counts.ties, alpha),
                       user_level(per_user, alpha, n_star),
                       user_level(per_impression, alpha, n_star), mean_expected)
