"""A bandit's allocation: the traffic share of each arm until the next update (spec §4.5).

A running bandit does not choose per request from live statistics: every update (seconds
apart) its statistics are read, :func:`allocate` turns them into one share per arm, and
requests are routed by weighted draws from those shares until the next update. So each
algorithm is used in its batched form:

* ``thompson``, ``discounted``: probability matching, the share of an arm is its posterior
  probability of being the best (what per-request Thompson sampling from the frozen
  posterior does, in distribution), Beta for rewards in [0, 1], Normal-Inverse-Gamma for
  real-valued ones; ``discounted`` decays old rewards by gamma per newer one (D-TS). Top-two
  weights optionally (GrowthBook). With an ``indifference`` δ, the weights are the
  probabilities of being within δ of the best instead, normalised: arms that cannot be
  told apart by δ share equally (plain Thompson sampling lets identical arms wander).
* ``ucb1``, ``sliding_window``, ``discounted_ucb``: the split the sequential rule would make
  of the next batch with optimistic pending counts (:func:`~champion.analysis.bandits.ucb_shares`),
  so a deterministic index does not send a whole batch to one arm.
* ``epsilon_greedy``: ε spread over the arms, the rest on the best mean (ties split).

Then, for every algorithm: the allocation is uniform until every arm has ``min_obs``
observed rewards; an arm added later gets an equal share until it has them (forced
exploration, §4.10) while the others split the rest; removed arms get nothing; the
additive floor is applied last; one arm gets everything. Rewards outside the configured
range where an algorithm needs [0, 1] freeze the allocation with an error instead of
guessing (§4.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from champion.analysis.bandits import (
    BetaPosteriors,
    FloatArray,
    StudentPosteriors,
    best_shares,
    epsilon_at,
    epsilon_shares,
    nig_posterior,
    prob_best,
    prob_near_best,
    ucb_shares,
    weight_floor,
)

ALGORITHMS = ("thompson", "ucb1", "epsilon_greedy", "sliding_window", "discounted",
              "discounted_ucb")
THOMPSON = ("thompson", "discounted")
UCB = ("ucb1", "sliding_window", "discounted_ucb")
OUT_OF_RANGE = "REWARD_OUT_OF_RANGE"


@dataclass(frozen=True)
class PolicyConfig:
    """The allocation's parameters (a running bandit's settings, minus the plumbing)."""

    algorithm: str = "thompson"
    family: str = "auto"  # auto, binary (Beta), gaussian (Normal-Inverse-Gamma)
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    nig_prior: tuple[float, float, float, float] = (0.0, 1e-6, 1e-3, 1e-3)
    epsilon: float = 0.1
    schedule: str = "constant"  # constant, auer, exponential
    auer_c: float = 0.1
    auer_d: float = 0.1
    decay: float = 0.999
    epsilon_min: float = 0.0
    explore_excludes_best: bool = False
    scale: float = 1.0  # B, the UCB bonus factor
    xi: float = 0.6
    window: int = 1000  # τ
    discount: float = 0.99  # gamma
    floor: float = 0.01
    min_obs: int = 100
    top_two: bool = False
    indifference: float = 0.0  # Thompson: mean differences below this do not matter
    draws: int = 10_000
    low: float = 0.0  # the reward range mapped to [0, 1] where an algorithm needs it
    high: float = 1.0
    nodes: int | None = None  # quadrature nodes of P(best) (None: by the number of arms)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown bandit algorithm {self.algorithm!r}")
        if not self.high > self.low:
            raise ValueError("the reward range needs high > low")


def _zeros(k: int) -> FloatArray:
    return np.zeros(k)


@dataclass(frozen=True)
class ArmStats:
    """Per-arm statistics of the observed rewards (arrays over the K arms, in order).

    ``n``, ``s``, ``ss``: rewards observed in time, their sum and sum of squares; ``lo`` and
    ``hi``: the smallest and largest (NaN for none); ``pending``: requests served whose
    reward has not come yet; ``window_*``: the newest ``window`` rewards (sliding window);
    ``disc_*``: every reward weighted ``gamma^(newer rewards)`` (discounted); ``active``: arms
    that may get traffic; ``binary``: every reward seen so far is 0 or 1; ``added``: arms
    added after the start (the others must all have ``min_obs`` rewards before the
    allocation leaves uniform; an added one only gets an equal share until it has them).
    """

    n: FloatArray
    s: FloatArray
    ss: FloatArray
    pending: FloatArray = field(default_factory=lambda: _zeros(0))
    lo: FloatArray = field(default_factory=lambda: _zeros(0))
    hi: FloatArray = field(default_factory=lambda: _zeros(0))
    window_n: FloatArray = field(default_factory=lambda: _zeros(0))
    window_s: FloatArray = field(default_factory=lambda: _zeros(0))
    window_ss: FloatArray = field(default_factory=lambda: _zeros(0))
    disc_n: FloatArray = field(default_factory=lambda: _zeros(0))
    disc_s: FloatArray = field(default_factory=lambda: _zeros(0))
    disc_ss: FloatArray = field(default_factory=lambda: _zeros(0))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    binary: bool = True
    added: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        k = len(self.n)
        for name in ("n", "s", "ss"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float))
        for name in ("pending", "window_n", "window_s", "window_ss", "disc_n", "disc_s",
                     "disc_ss"):
            value = np.asarray(getattr(self, name), dtype=float)
            object.__setattr__(self, name, value if value.size == k else np.zeros(k))
        for name in ("lo", "hi"):
            value = np.asarray(getattr(self, name), dtype=float)
            object.__setattr__(self, name, value if value.size == k else np.full(k, np.nan))
        active = np.asarray(self.active, dtype=bool)
        object.__setattr__(self, "active", active if active.size == k else np.ones(k, bool))
        added = np.asarray(self.added, dtype=bool)
        object.__setattr__(self, "added", added if added.size == k else np.zeros(k, bool))

    @property
    def k(self) -> int:
        return len(self.n)

    @classmethod
    def from_arrays(cls, n: list[float], s: list[float], ss: list[float] | None = None,
                    **kw: object) -> ArmStats:
        sq = ss if ss is not None else s  # 0/1 rewards: x² = x
        return cls(np.asarray(n, float), np.asarray(s, float), np.asarray(sq, float),
                   **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Allocation:
    """Shares to route by, and what the report shows of the arms' posteriors.

    ``prob_best``, ``means``, ``ci_low``, ``ci_high`` are NaN for an arm without a posterior
    (a removed arm; a Gaussian arm with fewer than 2 rewards). ``phase`` is ``single``,
    ``uniform`` (every arm still short of ``min_obs``), ``exploring`` (some are), ``adaptive``
    or ``frozen`` (``error`` says why; the shares are the previous ones).
    """

    shares: FloatArray
    prob_best: FloatArray
    means: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    phase: str
    family: str
    reason: str
    epsilon: float | None = None
    error: str | None = None


def _family(config: PolicyConfig, stats: ArmStats) -> str:
    if config.family != "auto":
        return config.family
    return "binary" if stats.binary else "gaussian"


def _source(config: PolicyConfig, stats: ArmStats) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The statistics the algorithm works on: all rewards, the window, or discounted."""
    if config.algorithm == "sliding_window":
        return stats.window_n, stats.window_s, stats.window_ss
    if config.algorithm in ("discounted", "discounted_ucb"):
        return stats.disc_n, stats.disc_s, stats.disc_ss
    return stats.n, stats.s, stats.ss


def _needs_unit_range(config: PolicyConfig, family: str) -> bool:
    return config.algorithm in UCB or family == "binary"


def _rescale(config: PolicyConfig, n: FloatArray, s: FloatArray, ss: FloatArray
             ) -> tuple[FloatArray, FloatArray]:
    """Sum and sum of squares of ``(x - low) / (high - low)``."""
    lo, width = config.low, config.high - config.low
    if lo == 0.0 and width == 1.0:
        return s, ss
    s1 = (s - n * lo) / width
    ss1 = (ss - 2 * lo * s + n * lo * lo) / (width * width)
    return s1, ss1


def posteriors(config: PolicyConfig, family: str, n: FloatArray, s: FloatArray,
               ss: FloatArray) -> tuple[BetaPosteriors | StudentPosteriors, np.ndarray]:
    """The family's posterior per arm (rewards rescaled to [0, 1] for Beta), and which arms
    have one (a Gaussian arm needs 2 rewards: with the weak prior and 1, the scale is
    effectively infinite)."""
    if family == "binary":
        s1, _ = _rescale(config, n, s, ss)
        alpha = config.prior_alpha + np.clip(s1, 0.0, None)
        beta = config.prior_beta + np.clip(n - s1, 0.0, None)
        return BetaPosteriors(alpha, beta), np.ones(n.size, dtype=bool)
    mu0, kappa0, a0, b0 = config.nig_prior
    fits = [nig_posterior(float(a), float(b), float(c), mu0, kappa0, a0, b0)
            for a, b, c in zip(n, s, ss, strict=True)]
    loc = np.array([f.mu for f in fits])
    scale = np.array([f.scale for f in fits])
    df = np.array([f.df for f in fits])
    return StudentPosteriors(loc, scale, df), n >= 2


def _summaries(config: PolicyConfig, family: str, post: BetaPosteriors | StudentPosteriors,
               has: np.ndarray, arms: np.ndarray) -> tuple[FloatArray, FloatArray, FloatArray]:
    k = has.size
    means, lo, hi = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    idx = np.flatnonzero(has & arms)
    if idx.size == 0:
        return means, lo, hi
    q = post.ppf(np.array([0.025, 0.5, 0.975]))
    if isinstance(post, BetaPosteriors):
        width = config.high - config.low
        mean = post.alpha / (post.alpha + post.beta)
        means[idx] = config.low + width * mean[idx]
        lo[idx] = config.low + width * q[idx, 0]
        hi[idx] = config.low + width * q[idx, 2]
    else:
        means[idx] = post.loc[idx]
        lo[idx], hi[idx] = q[idx, 0], q[idx, 2]
    return means, lo, hi


def _subset(post: BetaPosteriors | StudentPosteriors, idx: np.ndarray
            ) -> BetaPosteriors | StudentPosteriors:
    if isinstance(post, BetaPosteriors):
        return BetaPosteriors(post.alpha[idx], post.beta[idx])
    return StudentPosteriors(post.loc[idx], post.scale[idx], post.df[idx])


def _sample(post: BetaPosteriors | StudentPosteriors, draws: int, rng: np.random.Generator
            ) -> FloatArray:
    if isinstance(post, BetaPosteriors):
        return np.asarray(rng.beta(post.alpha, post.beta, size=(draws, post.alpha.size)))
    t = rng.standard_t(post.df, size=(draws, post.loc.size))
    return np.asarray(post.loc + post.scale * t)


def best_probabilities(config: PolicyConfig, post: BetaPosteriors | StudentPosteriors,
                       idx: np.ndarray, k: int) -> FloatArray:
    """P(best) among the arms ``idx`` (NaN elsewhere)."""
    out = np.full(k, np.nan)
    if idx.size:
        out[idx] = prob_best(_subset(post, idx), idx.size, config.nodes)
    return out


def allocate(config: PolicyConfig, stats: ArmStats, *, batch: float = 1.0,
             rng: np.random.Generator | None = None,
             previous: FloatArray | None = None) -> Allocation:
    """The shares until the next update; ``batch`` is the number of requests expected
    before it (UCB splits that batch), ``rng`` is for top-two draws, ``previous`` the
    shares kept when the rewards are out of range."""
    k = stats.k
    active = stats.active.copy()
    family = _family(config, stats)
    n, s, ss = _source(config, stats)
    post, has = posteriors(config, family, n, s, ss)
    arms = np.flatnonzero(active & has)
    pbest = best_probabilities(config, post, arms, k)
    means, ci_low, ci_high = _summaries(config, family, post, has, active)

    def done(shares: FloatArray, phase: str, reason: str, epsilon: float | None = None,
             error: str | None = None) -> Allocation:
        return Allocation(np.asarray(shares, dtype=float), pbest, means, ci_low, ci_high,
                          phase, family, reason, epsilon, error)

    n_active = int(active.sum())
    if n_active == 0:
        return done(np.zeros(k), "frozen", "no arm may get traffic", error="NO_ARMS")
    if n_active == 1:
        return done(active / 1.0, "single", "one arm: it gets every request")
    if _needs_unit_range(config, family):
        seen = stats.n > 0
        below = seen & (stats.lo < config.low - 1e-9)
        above = seen & (stats.hi > config.high + 1e-9)
        if (below | above).any():
            keep = previous if previous is not None and len(previous) == k else (
                active / n_active)
            what = (f"rewards outside [{config.low:g}, {config.high:g}] (smallest "
                    f"{np.nanmin(stats.lo):g}, largest {np.nanmax(stats.hi):g})")
            return done(keep, "frozen", f"{what}: {config.algorithm} with "
                        f"{'Beta posteriors' if family == 'binary' else 'its bonus'} needs "
                        "them in range; set the reward range (reward_low, reward_high) or "
                        "Gaussian rewards", error=OUT_OF_RANGE)
    need = max(config.min_obs, 2 if family == "gaussian" else 0)
    short = active & (stats.n < need)
    explored = active & ~short
    uniform = active / n_active
    if not explored.any() or (short & ~stats.added).any():
        short_by = {int(i): int(stats.n[i]) for i in np.flatnonzero(active)}
        return done(uniform, "uniform", f"uniform until every arm has {need} rewards "
                    f"(fewest: {min(short_by.values())})")
    idx = np.flatnonzero(explored)
    weights = np.zeros(k)
    epsilon: float | None = None
    if config.algorithm in THOMPSON:
        with_post = idx[has[idx]]
        if with_post.size == 0:
            weights[idx] = 1.0 / idx.size
        elif config.top_two and rng is not None:
            draws = _sample(_subset(post, with_post), config.draws, rng)
            weights[with_post] = best_shares(draws, top_two=True)
        elif config.indifference > 0:
            delta = config.indifference
            if isinstance(post, BetaPosteriors):
                delta /= config.high - config.low
            near = prob_near_best(_subset(post, with_post), with_post.size, delta,
                                  config.nodes)
            weights[with_post] = near / near.sum() if near.sum() > 0 else 1.0 / near.size
        elif np.array_equal(with_post, arms):
            weights[with_post] = pbest[with_post]
        else:
            weights[with_post] = prob_best(_subset(post, with_post), with_post.size,
                                           config.nodes)
        how = ("top-two Thompson weights" if config.top_two else
               f"P(within {config.indifference:g} of the best)" if config.indifference > 0
               else "P(best)")
    elif config.algorithm == "epsilon_greedy":
        pulls = float((stats.n + stats.pending)[active].sum())
        epsilon = epsilon_at(config.schedule, pulls, idx.size, epsilon=config.epsilon,
                             c=config.auer_c, d=config.auer_d, decay=config.decay,
                             minimum=config.epsilon_min)
        mean = s[idx] / np.maximum(n[idx], 1e-300)
        weights[idx] = epsilon_shares(mean, epsilon, config.explore_excludes_best)
        how = f"epsilon-greedy, epsilon {epsilon:.3g}"
    else:
        s1, _ = _rescale(config, n, s, ss)
        q = np.where(n[idx] > 0, s1[idx] / np.maximum(n[idx], 1e-300), 0.0)
        counts = n[idx] + stats.pending[idx]
        pulls = float((stats.n + stats.pending)[active].sum()) + batch
        if config.algorithm == "ucb1":
            c = 2.0 * config.scale ** 2 * math.log(max(pulls, 1.0))
        elif config.algorithm == "sliding_window":
            c = config.scale ** 2 * config.xi * math.log(max(min(pulls, config.window), 1.0))
        else:
            total = float(n[active].sum()) + batch
            c = 4.0 * config.scale ** 2 * config.xi * math.log(max(total, 1.0))
        weights[idx] = ucb_shares(q, counts, c, batch)
        how = f"{config.algorithm} over the next {batch:.0f} requests"
    explore = short.sum() / n_active
    shares = np.where(short, 1.0 / n_active, (1.0 - explore) * weights)
    shares[~active] = 0.0
    floored = np.zeros(k)
    floored[active] = weight_floor(shares[active], config.floor)
    phase = "exploring" if short.any() else "adaptive"
    reason = how if not short.any() else (
        f"{how}; {int(short.sum())} arm(s) with fewer than {need} rewards get an equal "
        "share until they have them")
    return done(floored, phase, reason, epsilon)


def choose(shares: FloatArray, u: float) -> int:
    """The arm a uniform draw ``u`` in [0, 1) picks from the shares (cumulative search)."""
    cum = np.cumsum(shares)
    return int(min(np.searchsorted(cum, u * cum[-1], side="right"), len(shares) - 1))


def nothing_known(k: int) -> Allocation:
    """The allocation of an experiment before its first update: uniform."""
    nan = np.full(k, np.nan)
    return Allocation(np.full(k, 1.0 / k), nan, nan, nan, nan, "uniform", "binary",
                      "no update yet")
