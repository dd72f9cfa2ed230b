"""Multi-armed bandits: indices, posteriors, the probability of being best (spec §4).

Pure functions of per-arm sufficient statistics (counts, sums, sums of squares, or an
ordered history of ``(arm, reward)`` where a policy needs one); randomness only from an
``rng`` passed in. :mod:`champion.analysis.bandit_policy` composes these into the batched
allocation a running experiment routes by; :mod:`champion.analysis.bandit_sim` into the
seeded simulations of spec §4.5, §4.4 and §4.7.

* ε-greedy schedules (§4.1): constant, Auer ``min(1, cK/(d²t))``, exponential.
* UCB1 (§4.2), sliding-window and discounted UCB (§4.4): indices, and their batched form
  (:func:`ucb_shares`): the split of the next batch of pulls that the sequential rule
  would make with every pending pull imputed at its arm's current mean ("optimistic
  pending counts", §4.5), found by water-filling instead of one pull at a time.
* Thompson sampling (§4.3): Beta posteriors for rewards in [0, 1], Normal-Inverse-Gamma for
  real-valued rewards; discounted Beta (D-TS, §4.4).
* P(arm is best) for independent posteriors by quadrature (:func:`prob_best`) or from
  joint draws (:func:`best_shares`, with GrowthBook's top-two variant).
* The additive weight floor of GrowthBook (§4.3), regret and its bounds (§4.7),
  per-period-weighted means against the bias of adaptive allocation (§4.10), and LinUCB
  (§4.6) for contextual use.

Ties in an argmax go to the lowest index where one arm must be chosen (the spec's
deterministic rule); where a share is computed (greedy and UCB allocations), tied arms
split it equally, so that identical arms get identical shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from champion.analysis._lazy import special

FloatArray = npt.NDArray[np.float64]

_TAIL = 1e-12  # quadrature ignores this much probability at each end of a posterior


def _arr(values: Sequence[float] | FloatArray | float) -> FloatArray:
    return np.asarray(values, dtype=float)


# --------------------------------------------------------------------------- ε-greedy (§4.1)


def epsilon_auer(t: float, k: int, c: float = 0.1, d: float = 0.1) -> float:
    """Auer, Cesa-Bianchi and Fischer's ``ε_n = min(1, cK/(d² t))`` (``0 < d ≤ min Δ``)."""
    if t <= 0:
        return 1.0
    return min(1.0, c * k / (d * d * t))


def epsilon_exponential(t: float, epsilon0: float, decay: float, minimum: float) -> float:
    """``max(ε_min, ε0 · gamma^t)``."""
    return max(minimum, epsilon0 * decay ** max(t, 0.0))


def epsilon_at(schedule: str, t: float, k: int, *, epsilon: float = 0.1, c: float = 0.1,
               d: float = 0.1, decay: float = 0.999, minimum: float = 0.0) -> float:
    """The exploration rate after ``t`` pulls under ``schedule`` (constant, auer,
    exponential)."""
    if schedule == "constant":
        return epsilon
    if schedule == "auer":
        return epsilon_auer(t, k, c, d)
    if schedule == "exponential":
        return epsilon_exponential(t, epsilon, decay, minimum)
    raise ValueError(f"unknown epsilon schedule {schedule!r}")


# --------------------------------------------------------------------------- UCB (§4.2, §4.4)


def ucb1_index(sums: Sequence[float] | FloatArray, counts: Sequence[float] | FloatArray,
               t: float) -> FloatArray:
    """``Q_a + sqrt(2 ln t / N_a)``, rewards in [0, 1]; an unplayed arm's index is +inf."""
    n, s = _arr(counts), _arr(sums)
    out = np.full(n.shape, np.inf)
    played = n > 0
    out[played] = s[played] / n[played] + np.sqrt(2.0 * math.log(max(t, 1.0)) / n[played])
    return out


def sw_ucb_index(sums: Sequence[float] | FloatArray, counts: Sequence[float] | FloatArray,
                 t: float, tau: int, xi: float = 0.6, scale: float = 1.0) -> FloatArray:
    """Sliding-window UCB over the window's counts and sums (Garivier and Moulines):
    ``Q + B sqrt(ξ ln(min(t, τ)) / N)``; +inf for an arm absent from the window."""
    n, s = _arr(counts), _arr(sums)
    out = np.full(n.shape, np.inf)
    played = n > 0
    log_term = math.log(max(min(t, tau), 1.0))
    out[played] = s[played] / n[played] + scale * np.sqrt(xi * log_term / n[played])
    return out


def d_ucb_index(sums: Sequence[float] | FloatArray, counts: Sequence[float] | FloatArray,
                xi: float = 0.6, scale: float = 1.0) -> FloatArray:
    """Discounted UCB over discounted counts and sums: ``Q + 2B sqrt(ξ ln n_gamma / N_gamma)``."""
    n, s = _arr(counts), _arr(sums)
    out = np.full(n.shape, np.inf)
    played = n > 0
    total = float(n.sum())
    log_term = math.log(total) if total > 1 else 0.0
    out[played] = s[played] / n[played] + 2 * scale * np.sqrt(xi * log_term / n[played])
    return out


def window_stats(arms: Sequence[int], rewards: Sequence[float], k: int, tau: int
                 ) -> tuple[FloatArray, FloatArray]:
    """Counts and sums of the last ``tau`` plays of a history (oldest first)."""
    a = np.asarray(arms[-tau:] if tau > 0 else [], dtype=int)
    r = _arr(rewards[-tau:] if tau > 0 else [])
    return (np.bincount(a, minlength=k).astype(float),
            np.bincount(a, weights=r, minlength=k).astype(float))


def discount_weights(length: int, gamma: float) -> FloatArray:
    """``gamma^(t-s)`` for plays s = 1..t of a history of ``length`` (the newest weighs 1)."""
    return gamma ** np.arange(length - 1, -1, -1, dtype=float)


def discounted_stats(arms: Sequence[int], rewards: Sequence[float], k: int, gamma: float,
                     values_sq: Sequence[float] | None = None
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Discounted counts, sums and sums of squares of a history (oldest first): each play
    weighs ``gamma^(t-s)``, as if every arm decayed by gamma at every step (spec §4.4)."""
    a = np.asarray(arms, dtype=int)
    r = _arr(rewards)
    w = discount_weights(len(a), gamma)
    sq = r * r if values_sq is None else _arr(values_sq)
    return (np.bincount(a, weights=w, minlength=k).astype(float),
            np.bincount(a, weights=w * r, minlength=k).astype(float),
            np.bincount(a, weights=w * sq, minlength=k).astype(float))


def discounted_beta(arms: Sequence[int], rewards: Sequence[float], k: int, gamma: float,
                    a0: float = 1.0, b0: float = 1.0) -> tuple[FloatArray, FloatArray]:
    """Discounted Thompson sampling's Beta parameters (Raj and Kalyani):
    ``alpha = a0 + Σ gamma^(t-s) r_s``, ``beta = b0 + Σ gamma^(t-s) (1 - r_s)``."""
    n, s, _ = discounted_stats(arms, rewards, k, gamma)
    return s + a0, (n - s) + b0


def ucb_shares(means: FloatArray, counts: FloatArray, c: float | FloatArray, batch: float
               ) -> FloatArray:
    """How the sequential rule "pull the arm of highest ``Q_a + sqrt(c / N_a)``" splits the
    next ``batch`` pulls when each pull is imputed at its arm's current mean (so ``Q``
    stays and ``N`` grows): water-filling to the level ``L`` where
    ``Σ_a max(0, c/(L - Q_a)² - N_a) = batch``.

    ``counts`` should include the pulls still pending (optimistic pending counts, §4.5).
    Arms with no pull (``N = 0``, an infinite index) share the batch first. Arms with
    equal indices get equal shares.
    """
    q = _arr(means)
    n = _arr(counts)
    cc = np.broadcast_to(_arr(c), q.shape).astype(float)
    k = q.size
    if k == 0:
        return np.zeros(0)
    unplayed = n <= 0
    if unplayed.any():
        return unplayed / unplayed.sum()
    if batch <= 0 or not np.any(cc > 0):
        index = q + np.sqrt(np.maximum(cc, 0.0) / n)
        top = np.isclose(index, index.max(), rtol=0.0, atol=1e-12)
        return top / top.sum()
    cc = np.maximum(cc, 1e-300)

    def fill(level: float) -> FloatArray:
        gap = np.maximum(level - q, 1e-300)
        return np.maximum(cc / (gap * gap) - n, 0.0)

    hi = float(np.max(q + np.sqrt(cc / n)))
    lo = float(q.max())
    # fill(hi) = 0 and fill -> inf as the level falls to max(q): bisect on the level.
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if fill(mid).sum() > batch:
            lo = mid
        else:
            hi = mid
    x = fill(hi)
    total = x.sum()
    if not total > 0:
        index = q + np.sqrt(cc / n)
        top = np.isclose(index, index.max(), rtol=0.0, atol=1e-12)
        return top / top.sum()
    return x / total


# --------------------------------------------------------------------------- greedy shares


def greedy_shares(values: FloatArray) -> FloatArray:
    """All the share on the argmax; tied arms split it equally."""
    v = _arr(values)
    top = np.isclose(v, v.max(), rtol=1e-12, atol=1e-15)
    return top / top.sum()


def epsilon_shares(means: FloatArray, epsilon: float, explore_excludes_best: bool = False
                   ) -> FloatArray:
    """ε-greedy's allocation: ε spread uniformly over all K arms (the textbook rule), the
    rest on the best mean; with ``explore_excludes_best`` (Seldon's router), ε spread over
    the other arms only."""
    m = _arr(means)
    k = m.size
    greedy = greedy_shares(m)
    if k == 1:
        return greedy
    if explore_excludes_best:
        others = 1.0 - greedy
        return (1.0 - epsilon) * greedy + epsilon * others / others.sum()
    return (1.0 - epsilon) * greedy + epsilon / k


def weight_floor(weights: Sequence[float] | FloatArray, floor: float) -> FloatArray:
    """GrowthBook's additive floor: ``p_i = f + (1 - K f) w_i / Σw``; uniform when
    ``K f ≥ 1`` or when every weight is 0."""
    w = _arr(weights)
    k = w.size
    total = w.sum()
    if k == 0:
        return w
    if k * floor >= 1.0 or not total > 0:
        return np.full(k, 1.0 / k)
    return floor + (1.0 - k * floor) * w / total


# --------------------------------------------------------------------------- posteriors (§4.3)


class Marginal(Protocol):
    """A posterior of an arm's mean: what P(best) and the intervals need."""

    @property
    def mean(self) -> float: ...

    def cdf(self, x: FloatArray) -> FloatArray: ...

    def ppf(self, u: FloatArray) -> FloatArray: ...


@dataclass(frozen=True)
class BetaMarginal:
    """``Beta(alpha, beta)``: an arm's success probability (or mean reward in [0, 1])."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def cdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(special.betainc(self.alpha, self.beta, np.clip(x, 0.0, 1.0)))

    def ppf(self, u: FloatArray) -> FloatArray:
        return np.asarray(special.betaincinv(self.alpha, self.beta, u))


@dataclass(frozen=True)
class StudentMarginal:
    """Student-t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``: the
    marginal posterior of a Normal-Inverse-Gamma mean."""

    loc: float
    scale: float
    df: float

    @property
    def mean(self) -> float:
        return self.loc

    def cdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(special.stdtr(self.df, (np.asarray(x) - self.loc) / self.scale))

    def ppf(self, u: FloatArray) -> FloatArray:
        return np.asarray(self.loc + self.scale * special.stdtrit(self.df, u))


@dataclass(frozen=True)
class NIG:
    """A Normal-Inverse-Gamma posterior ``(μn, κn, an, bn)`` of a Gaussian arm."""

    mu: float
    kappa: float
    a: float
    b: float

    @property
    def df(self) -> float:
        return 2.0 * self.a

    @property
    def scale(self) -> float:
        """Scale of the mean's marginal Student-t: ``sqrt(bn / (an κn))``."""
        return math.sqrt(self.b / (self.a * self.kappa))

    def marginal(self) -> StudentMarginal:
        return StudentMarginal(self.mu, self.scale, self.df)

    def sample(self, draws: int, rng: np.random.Generator) -> FloatArray:
        """Draw ``σ² ~ InvGamma(an, bn)`` then ``μ ~ N(μn, σ²/κn)``."""
        sigma2 = self.b / rng.gamma(self.a, 1.0, size=draws)
        return np.asarray(rng.normal(self.mu, np.sqrt(sigma2 / self.kappa)))


def nig_posterior(n: float, total: float, total_sq: float, mu0: float = 0.0,
                  kappa0: float = 1e-6, a0: float = 1e-3, b0: float = 1e-3) -> NIG:
    """The conjugate update from ``(n, Σx, Σx²)``; the default prior is the spec's weak one.

    ``SS = Σ(x - x̄)²`` is formed as ``Σx² - (Σx)²/n``, floored at 0 against rounding.
    """
    mean = total / n if n > 0 else 0.0
    ss = max(total_sq - total * total / n, 0.0) if n > 0 else 0.0
    kn = kappa0 + n
    mun = (kappa0 * mu0 + n * mean) / kn
    an = a0 + n / 2.0
    bn = b0 + 0.5 * ss + kappa0 * n * (mean - mu0) ** 2 / (2.0 * kn)
    return NIG(mun, kn, an, bn)


def beta_posterior(n: float, successes: float, a0: float = 1.0, b0: float = 1.0
                   ) -> BetaMarginal:
    """``Beta(a0 + S, b0 + n - S)`` (``S`` may be fractional for rewards in [0, 1])."""
    return BetaMarginal(a0 + successes, b0 + max(n - successes, 0.0))


class Posteriors(Protocol):
    """Independent posteriors of K arms' means, vectorised over the arms."""

    def ppf(self, u: FloatArray) -> FloatArray:
        """Each arm's quantiles at ``u``: shape (K, len(u))."""
        ...

    def cdf(self, x: FloatArray) -> FloatArray:
        """Each arm's distribution function at the points ``x``: shape (K, len(x))."""
        ...


@dataclass(frozen=True)
class BetaPosteriors:
    """``Beta(alpha_i, beta_i)`` per arm."""

    alpha: FloatArray
    beta: FloatArray

    def ppf(self, u: FloatArray) -> FloatArray:
        return np.asarray(special.betaincinv(self.alpha[:, None], self.beta[:, None],
                                             u[None, :]))

    def cdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(special.betainc(self.alpha[:, None], self.beta[:, None],
                                          np.clip(x, 0.0, 1.0)[None, :]))

    def marginal(self, i: int) -> BetaMarginal:
        return BetaMarginal(float(self.alpha[i]), float(self.beta[i]))


@dataclass(frozen=True)
class StudentPosteriors:
    """Student-t posteriors of the means (Normal-Inverse-Gamma arms)."""

    loc: FloatArray
    scale: FloatArray
    df: FloatArray

    def ppf(self, u: FloatArray) -> FloatArray:
        return np.asarray(self.loc[:, None] + self.scale[:, None]
                          * special.stdtrit(self.df[:, None], u[None, :]))

    def cdf(self, x: FloatArray) -> FloatArray:
        z = (x[None, :] - self.loc[:, None]) / self.scale[:, None]
        return np.asarray(special.stdtr(self.df[:, None], z))

    def marginal(self, i: int) -> StudentMarginal:
        return StudentMarginal(float(self.loc[i]), float(self.scale[i]), float(self.df[i]))


def _stieltjes(f: FloatArray, shifted: FloatArray) -> FloatArray:
    """``Σ ΔF_i · (G_i(x_g) + G_i(x_g+1)) / 2`` with ``G_i = Π_{j≠i} F_j(x + δ)`` (``shifted``
    holds ``F_j(x + δ)``), per arm i."""
    log_f = np.log(np.maximum(shifted, 1e-300))
    g = np.exp(log_f.sum(axis=0)[None, :] - log_f)
    if f.shape[0] == 1:
        g[:] = 1.0
    else:
        for i in range(f.shape[0]):  # an exact 0 in another arm's F zeroes the product
            zero = (np.delete(shifted, i, axis=0) <= 0).any(axis=0)
            g[i, zero] = 0.0
    return np.asarray((np.diff(f, axis=1) * (g[:, 1:] + g[:, :-1]) / 2).sum(axis=1))


def _beats(posteriors: Posteriors, k: int, nodes: int | None, delta: float) -> FloatArray:
    """``P_i = ∫ Π_{j≠i} F_j(x + δ) dF_i(x)``: the probability that arm i's mean is within
    δ of every other arm's or above (δ = 0: that it is the best)."""
    m = nodes or (400 if k <= 8 else max(50, 3200 // k))
    m += m % 2
    u = np.clip((1.0 - np.cos(np.pi * np.arange(m + 1) / m)) / 2.0, _TAIL, 1.0 - _TAIL)
    q = posteriors.ppf(u)
    fine = np.unique(q.ravel())
    coarse = np.searchsorted(fine, np.unique(q[:, ::2].ravel()))
    f = posteriors.cdf(fine)
    shifted = f if delta == 0.0 else posteriors.cdf(fine + delta)
    p_fine = _stieltjes(f, shifted)
    p_coarse = _stieltjes(f[:, coarse], shifted[:, coarse])
    return np.clip(p_fine + (p_fine - p_coarse) / 3.0, 0.0, 1.0)


def prob_best(posteriors: Posteriors, k: int, nodes: int | None = None) -> FloatArray:
    """P(arm i has the largest mean) for K independent posteriors, by quadrature.

    ``P_i = ∫ Π_{j≠i} F_j dF_i``, a Stieltjes integral by the trapezoid rule on the union
    of every arm's quantiles at ``nodes + 1`` Chebyshev points of (0, 1) (so each
    posterior, however concentrated, is resolved where its mass is, and each cell moves
    any F by little), then one Richardson step against the nested half grid (the rule's
    error is O(h²)). About 1e-7 from adaptive quadrature with 400 nodes; the result is
    renormalised to sum to 1.
    """
    if k == 0:
        return np.zeros(0)
    if k == 1:
        return np.ones(1)
    out = _beats(posteriors, k, nodes, 0.0)
    total = out.sum()
    return out / total if total > 0 else np.full(k, 1.0 / k)


def prob_near_best(posteriors: Posteriors, k: int, delta: float, nodes: int | None = None
                   ) -> FloatArray:
    """P(arm i's mean is at least the best other's minus ``delta``), per arm: 1 for every
    arm of a group that cannot be told apart by more than δ, so normalised these weights
    share the traffic equally among near-best arms (identical arms stay uniform), and
    still send nothing to an arm clearly more than δ worse."""
    if k <= 1:
        return np.ones(k)
    return _beats(posteriors, k, nodes, delta)


def prob_best_beta(alphas: Sequence[float] | FloatArray, betas: Sequence[float] | FloatArray
                   ) -> FloatArray:
    """P(best) for independent ``Beta(alpha_i, beta_i)`` posteriors (spec §4.3's quadrature)."""
    a, b = _arr(alphas), _arr(betas)
    return prob_best(BetaPosteriors(a, b), a.size)


def prob_best_t(locs: Sequence[float] | FloatArray, scales: Sequence[float] | FloatArray,
                dfs: Sequence[float] | FloatArray) -> FloatArray:
    """P(best) for independent Student-t posteriors of the means (Gaussian TS)."""
    m = _arr(locs)
    return prob_best(StudentPosteriors(m, _arr(scales), _arr(dfs)), m.size)


def sample_beta(alphas: Sequence[float], betas: Sequence[float], draws: int,
                rng: np.random.Generator) -> FloatArray:
    """``draws`` joint samples, one column per arm."""
    return np.asarray(rng.beta(_arr(alphas), _arr(betas), size=(draws, len(alphas))))


def best_shares(draws: FloatArray, top_two: bool = False) -> FloatArray:
    """The share of joint draws (rows) in which each arm (column) is the best; with
    ``top_two``, first or second, halved (GrowthBook's top-two weights, with columns 0
    and 1 of the sort: not its stored code's 1 and 2)."""
    d = np.asarray(draws, dtype=float)
    rows, k = d.shape
    if k == 1 or rows == 0:
        return np.full(k, 1.0 / k)
    if not top_two:
        return np.bincount(d.argmax(axis=1), minlength=k) / rows
    order = np.argsort(-d, axis=1)[:, :2]
    return np.bincount(order.ravel(), minlength=k) / (2.0 * rows)


def interval(m: Marginal, level: float = 0.95) -> tuple[float, float]:
    """An equal-tailed credible interval of a posterior."""
    tail = (1.0 - level) / 2.0
    lo, hi = m.ppf(np.asarray([tail, 1.0 - tail]))
    return float(lo), float(hi)


# --------------------------------------------------------------------------- regret (§4.7)


def pseudo_regret(mu: Sequence[float], pulls: Sequence[float]) -> float:
    """``Σ_a Δ_a N_a`` with ``Δ_a = max μ - μ_a``."""
    m = _arr(mu)
    return float(((m.max() - m) * _arr(pulls)).sum())


def ucb1_regret_bound(mu: Sequence[float], horizon: float) -> float:
    """Auer et al.'s ``Σ_{Δ>0} 8 ln T / Δ + (1 + π²/3) Σ Δ``."""
    m = _arr(mu)
    d = m.max() - m
    gaps = d[d > 0]
    return float((8 * math.log(horizon) / gaps).sum() + (1 + math.pi ** 2 / 3) * d.sum())


def bernoulli_kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) ‖ Bernoulli(q))."""
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def lai_robbins(mu: Sequence[float], horizon: float) -> float:
    """The asymptotic term ``Σ Δ_a / KL(μ_a, μ*) · ln T`` (a lim-inf, not a finite-T bound)."""
    m = _arr(mu)
    best = float(m.max())
    return float(sum((best - x) / bernoulli_kl(float(x), best) for x in m if x < best)
                 * math.log(horizon))


# --------------------------------------------------------------------------- per period (§4.10)


@dataclass(frozen=True)
class WeightedMean:
    """An arm's mean over periods, each period weighted by its total traffic."""

    mean: float | None
    se: float | None
    periods: int

    def ci(self, z: float = 1.959963984540054) -> tuple[float | None, float | None]:
        if self.mean is None or self.se is None:
            return None, None
        return self.mean - z * self.se, self.mean + z * self.se


def period_weighted_means(n: FloatArray, s: FloatArray, ss: FloatArray) -> list[WeightedMean]:
    """Per-period-weighted means: periods (rows) weighted by their total observations
    across arms (columns), so that an arm's estimate does not lean on the periods in which
    the allocation happened to favour it (the time-varying-mix bias of adaptive designs;
    GrowthBook's ``weight_by_period``). A period in which an arm has no observation is left
    out of that arm's average (its weights renormalised over the others).

    The standard error is ``sqrt(Σ w_p² s²_p / n_p) / Σ w_p`` with each period's sample
    variance (the pooled variance of the arm where a period has one observation).
    """
    n = np.atleast_2d(_arr(n))
    s = np.atleast_2d(_arr(s))
    ss = np.atleast_2d(_arr(ss))
    weight = n.sum(axis=1)
    out: list[WeightedMean] = []
    for a in range(n.shape[1]):
        rows = n[:, a] > 0
        if not rows.any():
            out.append(WeightedMean(None, None, 0))
            continue
        na, sa, ssa, w = n[rows, a], s[rows, a], ss[rows, a], weight[rows]
        means = sa / na
        total_n, total_s = na.sum(), sa.sum()
        pooled = (max(ssa.sum() - total_s * total_s / total_n, 0.0) / (total_n - 1)
                  if total_n > 1 else 0.0)
        var = np.where(na > 1, np.maximum(ssa - sa * sa / np.maximum(na, 1), 0.0)
                       / np.maximum(na - 1, 1), pooled)
        wsum = w.sum()
        mean = float((w * means).sum() / wsum)
        se = float(math.sqrt(float((w * w * var / na).sum())) / wsum)
        out.append(WeightedMean(mean, se, int(rows.sum())))
    return out


# --------------------------------------------------------------------------- LinUCB (§4.6)


def linucb_alpha(delta: float) -> float:
    """Li et al.'s exploration weight ``1 + sqrt(ln(2/δ)/2)``."""
    return 1.0 + math.sqrt(math.log(2.0 / delta) / 2.0)


class LinUCB:
    """Disjoint LinUCB (Li, Chu, Langford and Schapire 2010, Algorithm 1): per arm a ridge
    regression ``A_a = I + Σ x xᵀ``, ``b_a = Σ r x``; score ``θ_aᵀx + alpha sqrt(xᵀ A_a⁻¹ x)``.
    ``A⁻¹`` is kept by Sherman-Morrison rank-one updates; ties go to the lowest index."""

    def __init__(self, k: int, d: int, alpha: float) -> None:
        self.alpha = alpha
        self.a_inv = np.stack([np.eye(d) for _ in range(k)])
        self.b = np.zeros((k, d))

    def scores(self, x: Sequence[float] | FloatArray) -> FloatArray:
        v = _arr(x)
        theta = np.einsum("kij,kj->ki", self.a_inv, self.b)
        width = np.sqrt(np.einsum("i,kij,j->k", v, self.a_inv, v))
        return np.asarray(theta @ v + self.alpha * width)

    def choose(self, x: Sequence[float] | FloatArray) -> int:
        return int(np.argmax(self.scores(x)))

    def update(self, arm: int, x: Sequence[float] | FloatArray, reward: float) -> None:
        v = _arr(x)
        a_inv = self.a_inv[arm]
        av = a_inv @ v
        self.a_inv[arm] = a_inv - np.outer(av, av) / (1.0 + v @ av)
        self.b[arm] += reward * v
