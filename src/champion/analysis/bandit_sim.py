"""Seeded bandit simulations with Bernoulli arms (spec §4.4, §4.5, §4.7), many seeds at once.

Each function runs ``seeds`` independent simulations side by side as rows of numpy arrays,
driven by one ``rng`` (so the figures are reproducible, though not draw-for-draw those of
the spec's scripts, which run one seed at a time). They report pseudo-regret
``Σ_t (μ* - μ_{a_t})``, whose variance is lower than that of realised regret.

* :func:`simulate`: the textbook per-request policies of §4.7 (UCB1, Thompson, ε-greedy,
  uniform) on stationary arms;
* :func:`simulate_change`: §4.4's policies for drift (UCB1, SW-UCB, D-UCB, TS, D-TS) on arms
  whose means change at one step;
* :func:`simulate_batched`: the production allocation of
  :func:`~champion.analysis.bandit_policy.allocate`, recomputed every ``batch`` requests
  from the rewards observed so far, requests drawn from its shares in between (§4.5). This
  is the in-process reference for a running experiment with the same update cadence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from champion.analysis.bandit_policy import ArmStats, PolicyConfig, allocate
from champion.analysis.bandits import FloatArray

POLICIES = ("ucb1", "thompson", "epsilon_greedy", "uniform")
CHANGE_POLICIES = ("ucb1", "sliding_window", "discounted_ucb", "thompson", "discounted")


@dataclass(frozen=True)
class SimResult:
    """Per seed: pseudo-regret, the share of pulls on the best arm, the pull counts, and
    (batched simulations) the allocation learned at the end."""

    regret: FloatArray
    frac_best: FloatArray
    pulls: FloatArray
    final_shares: FloatArray | None = None

    @property
    def mean(self) -> float:
        return float(self.regret.mean())

    @property
    def sd(self) -> float:
        return float(self.regret.std(ddof=1)) if self.regret.size > 1 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.regret, q))


def _argmax_rows(values: FloatArray) -> np.ndarray:
    """Row-wise argmax, ties to the lowest index (numpy's rule)."""
    return np.asarray(values.argmax(axis=1))


def simulate(policy: str, p: Sequence[float], horizon: int, seeds: int,
             rng: np.random.Generator, *, epsilon: float = 0.1) -> SimResult:
    """§4.7's stationary simulation of one per-request policy (``bandits.py``'s rules):
    UCB1 plays each arm once then the highest index; Thompson draws from Beta(1+S, 1+F);
    ε-greedy explores uniformly over all arms with probability ε (and while an arm is
    unplayed), else plays the best mean; uniform picks at random."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    mu = np.asarray(p, dtype=float)
    k = mu.size
    gap = mu.max() - mu
    rows = np.arange(seeds)
    n = np.zeros((seeds, k))
    s = np.zeros((seeds, k))
    for t in range(1, horizon + 1):
        if policy == "ucb1":
            if t <= k:
                arm = np.full(seeds, t - 1)
            else:
                arm = _argmax_rows(s / n + np.sqrt(2.0 * math.log(t) / n))
        elif policy == "thompson":
            arm = _argmax_rows(rng.beta(1.0 + s, 1.0 + n - s))
        elif policy == "epsilon_greedy":
            explore = (rng.random(seeds) < epsilon) | (n == 0).any(axis=1)
            greedy = _argmax_rows(s / np.maximum(n, 1.0))
            arm = np.where(explore, rng.integers(k, size=seeds), greedy)
        else:
            arm = rng.integers(k, size=seeds)
        reward = (rng.random(seeds) < mu[arm]).astype(float)
        n[rows, arm] += 1.0
        s[rows, arm] += reward
    regret = (n * gap).sum(axis=1)
    best = mu == mu.max()
    return SimResult(regret, n[:, best].sum(axis=1) / horizon, n)


def simulate_change(policy: str, before: Sequence[float], after: Sequence[float],
                    horizon: int, seeds: int, rng: np.random.Generator, *,
                    change_at: int | None = None, tau: int = 606, gamma: float = 0.9975,
                    xi: float = 0.6) -> SimResult:
    """§4.4's simulation (``bandits_ns.py``'s rules): means ``before`` for t ≤ ``change_at``
    (default half the horizon), ``after`` from then on. ``tau`` is SW-UCB's window,
    ``gamma`` the discount of D-UCB or D-TS."""
    if policy not in CHANGE_POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    mu0 = np.asarray(before, dtype=float)
    mu1 = np.asarray(after, dtype=float)
    k = mu0.size
    change = horizon // 2 if change_at is None else change_at
    rows = np.arange(seeds)
    nw = np.zeros((seeds, k))  # sliding window
    sw = np.zeros((seeds, k))
    ring_arm = np.zeros((seeds, max(tau, 1)), dtype=int)
    ring_reward = np.zeros((seeds, max(tau, 1)))
    nd = np.zeros((seeds, k))  # discounted
    sd = np.zeros((seeds, k))
    n = np.zeros((seeds, k))  # everything
    s = np.zeros((seeds, k))
    a_ts = np.ones((seeds, k))
    b_ts = np.ones((seeds, k))
    regret = np.zeros(seeds)
    best_pulls = np.zeros(seeds)
    for t in range(1, horizon + 1):
        mu = mu0 if t <= change else mu1
        if policy == "ucb1":
            if (n == 0).any():
                arm = np.asarray(n.argmin(axis=1))
            else:
                arm = _argmax_rows(s / n + np.sqrt(2.0 * math.log(t) / n))
        elif policy == "sliding_window":
            unplayed = (nw == 0).any(axis=1)
            index = sw / np.maximum(nw, 1e-300) + np.sqrt(
                xi * math.log(min(t, tau)) / np.maximum(nw, 1e-300))
            arm = np.where(unplayed, nw.argmin(axis=1), _argmax_rows(index))
        elif policy == "discounted_ucb":
            unplayed = (nd == 0).any(axis=1)
            total = nd.sum(axis=1, keepdims=True)
            index = sd / np.maximum(nd, 1e-300) + 2.0 * np.sqrt(
                xi * np.log(np.maximum(total, 1.0)) / np.maximum(nd, 1e-300))
            arm = np.where(unplayed, nd.argmin(axis=1), _argmax_rows(index))
        else:
            arm = _argmax_rows(rng.beta(a_ts, b_ts))
        reward = (rng.random(seeds) < mu[arm]).astype(float)
        regret += mu.max() - mu[arm]
        best_pulls += mu[arm] == mu.max()
        n[rows, arm] += 1.0
        s[rows, arm] += reward
        if policy == "sliding_window":
            slot = (t - 1) % tau
            if t > tau:
                old = ring_arm[:, slot]
                nw[rows, old] -= 1.0
                sw[rows, old] -= ring_reward[:, slot]
            ring_arm[:, slot] = arm
            ring_reward[:, slot] = reward
            nw[rows, arm] += 1.0
            sw[rows, arm] += reward
        elif policy == "discounted_ucb":
            nd *= gamma
            sd *= gamma
            nd[rows, arm] += 1.0
            sd[rows, arm] += reward
        elif policy == "thompson":
            a_ts[rows, arm] += reward
            b_ts[rows, arm] += 1.0 - reward
        elif policy == "discounted":
            a_ts = 1.0 + gamma * (a_ts - 1.0)
            b_ts = 1.0 + gamma * (b_ts - 1.0)
            a_ts[rows, arm] += reward
            b_ts[rows, arm] += 1.0 - reward
    return SimResult(regret, best_pulls / horizon, n)


def simulate_batched(config: PolicyConfig, p: Sequence[float], horizon: int, batch: int,
                     seeds: int, rng: np.random.Generator, *, delay_batches: int = 0,
                     change_at: int | None = None, after: Sequence[float] | None = None
                     ) -> SimResult:
    """The production allocation, updated every ``batch`` requests (the last batch may be
    shorter): requests between updates are drawn from the shares (multinomially), their
    Bernoulli rewards become visible ``delay_batches`` updates later (0: at the next one;
    the unseen ones count as pending). With ``after``, the means switch at ``change_at``.
    The sliding-window and discounted statistics are built from the rewards in serving
    order, as the store's newest-first reads do."""
    mu0 = np.asarray(p, dtype=float)
    mu1 = np.asarray(after, dtype=float) if after is not None else mu0
    k = mu0.size
    change = horizon if change_at is None else change_at
    regret = np.zeros(seeds)
    best_pulls = np.zeros(seeds)
    pulls = np.zeros((seeds, k))
    final = np.zeros((seeds, k))
    for seed in range(seeds):
        history_arm: list[np.ndarray] = []
        history_reward: list[np.ndarray] = []
        seen = 0  # batches whose rewards are visible
        shares = np.full(k, 1.0 / k)
        t = 0
        while t < horizon:
            visible = max(seen - delay_batches, 0)
            arms = (np.concatenate(history_arm[:visible]) if visible else
                    np.zeros(0, dtype=int))
            rewards = (np.concatenate(history_reward[:visible]) if visible else np.zeros(0))
            served = (np.concatenate(history_arm) if history_arm else np.zeros(0, dtype=int))
            stats = _stats(config, k, arms, rewards, served)
            shares = allocate(config, stats, batch=batch, rng=rng, previous=shares).shares
            size = min(batch, horizon - t)
            mu = mu0 if t < change else mu1
            # the batch in serving order, each request's arm drawn from the shares
            arm = rng.choice(k, size=size, p=shares / shares.sum())
            if change < t + size and t < change:
                mu_t = np.where(np.arange(t, t + size) < change, 0, 1)
                means = np.where(mu_t[:, None] == 0, mu0[None, :], mu1[None, :])[
                    np.arange(size), arm]
                best = np.where(mu_t == 0, mu0.max(), mu1.max())
            else:
                means = mu[arm]
                best = np.full(size, mu.max())
            reward = (rng.random(size) < means).astype(float)
            regret[seed] += float((best - means).sum())
            best_pulls[seed] += float((means == best).sum())
            pulls[seed] += np.bincount(arm, minlength=k)
            history_arm.append(arm)
            history_reward.append(reward)
            seen += 1
            t += size
        arms = np.concatenate(history_arm)
        stats = _stats(config, k, arms, np.concatenate(history_reward), arms)
        final[seed] = allocate(config, stats, batch=batch, rng=rng, previous=shares).shares
    return SimResult(regret, best_pulls / horizon, pulls, final)


def _stats(config: PolicyConfig, k: int, arms: np.ndarray, rewards: FloatArray,
           served: np.ndarray) -> ArmStats:
    n = np.bincount(arms, minlength=k).astype(float)
    s = np.bincount(arms, weights=rewards, minlength=k).astype(float)
    pending = np.bincount(served, minlength=k).astype(float) - n
    window = slice(max(arms.size - config.window, 0), arms.size)
    wa, wr = arms[window], rewards[window]
    w = config.discount ** np.arange(arms.size - 1, -1, -1, dtype=float)
    return ArmStats(
        n, s, s.copy(), pending=pending,
        lo=np.where(n > 0, 0.0, np.nan), hi=np.where(n > 0, 1.0, np.nan),
        window_n=np.bincount(wa, minlength=k).astype(float),
        window_s=np.bincount(wa, weights=wr, minlength=k).astype(float),
        window_ss=np.bincount(wa, weights=wr, minlength=k).astype(float),
        disc_n=np.bincount(arms, weights=w, minlength=k).astype(float),
        disc_s=np.bincount(arms, weights=w * rewards, minlength=k).astype(float),
        disc_ss=np.bincount(arms, weights=w * rewards, minlength=k).astype(float),
        binary=True)

