"""Bandit: traffic moves toward the variant (arm) that earns the most reward, while it learns.

Every ``update_seconds`` the controller reads each arm's rewards (feedback of one metric,
credited by the request ids themselves, so a lost request-log row loses no reward) and its
pulls (the request log), recomputes the allocation with the configured algorithm
(:func:`~champion.analysis.bandit_policy.allocate`, spec §4) and writes it as the hot
state; every server process routes by it from memory (a weighted draw per request, sticky
by unit if asked: :class:`~champion.routing.allocation.AllocationPolicy`), with no database
write on the request path. Each re-allocation is a point of the timeline.

Until every arm has ``min_units_per_arm`` rewards the allocation is uniform; an arm added
later gets an equal share until it has them; a removed arm gets nothing; every arm keeps
at least ``min_share`` (additively). When the leader's probability of being the best stays
at or above ``decide_threshold`` for ``decide_after_seconds``, the experiment stops and
promotes it (or just stops). The report carries per arm the pulls, rewards, means with
their intervals, per-period-weighted means (adaptive allocation biases the plain ones),
P(best), the shares, the cumulative reward and an estimate of the regret.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from champion.analysis.bandit_policy import Allocation, ArmStats, PolicyConfig, allocate
from champion.analysis.bandits import period_weighted_means
from champion.routing.allocation import (
    AllocationPolicy,
    owners_for,
    pack_owners,
    unpack_owners,
)
from champion.routing.base import RoutingPolicy
from champion.strategies.base import (
    Experiment,
    State,
    Step,
    Strategy,
    alert,
    chart,
    column,
    register,
    table,
    view,
)
from champion.strategies.settings import SettingsError, setting

Algorithm = Literal["thompson", "ucb1", "epsilon_greedy", "sliding_window", "discounted",
                    "discounted_ucb"]
_Z95 = 1.959963984540054
_DISCOUNT_TAIL = 1e-6  # rewards discounted below this weight are not read


@dataclass(frozen=True)
class BanditSettings:
    algorithm: Algorithm = setting(
        "thompson", "thompson (P(best) weights), ucb1, epsilon_greedy, sliding_window "
        "(SW-UCB), discounted (D-TS) or discounted_ucb (D-UCB).")
    reward: str = setting("reward", "The feedback metric that is the reward.", max_length=64)
    reward_model: Literal["auto", "bernoulli", "gaussian"] = setting(
        "auto", "Posteriors: Beta (bernoulli, rewards in [reward_low, reward_high]) or "
        "Normal-Inverse-Gamma (gaussian, real-valued); auto: Beta while every reward is 0 or "
        "1.")
    reward_low: float = setting(0.0, "Lowest possible reward: rewards are mapped from "
                                "[reward_low, reward_high] to [0, 1] for Beta and UCB.")
    reward_high: float = setting(1.0, "Highest possible reward.")
    min_share: float = setting(0.01, "Exploration floor: each arm gets f + (1 - K f) of its "
                               "weight, so at least f (GrowthBook's additive floor).",
                               low=0.0, high=1.0)
    update_seconds: float = setting(10.0, "Seconds between re-allocations from the feedback "
                                    "(at least the controller's tick).", low=1.0,
                                    high=7 * 86400.0)
    min_units_per_arm: int = setting(100, "Rewards each arm needs before the allocation "
                                     "leaves uniform (an arm added later gets an equal share "
                                     "until it has them).", low=0, high=10**9)
    sticky: bool = setting(True, "A request with a unit gets its unit's bucket's arm (units "
                           "move as little as each re-allocation allows); without a unit, "
                           "each request is drawn from the shares.")
    attribution_seconds: float = setting(86400.0, "A reward counts if it comes within this "
                                         "long of its request; later ones are counted as "
                                         "late and left out.", above=0.0)
    missing_reward: float | None = setting(None, "The reward of a request whose feedback "
                                           "has not come within attribution_seconds (null: "
                                           "it is left out, never imputed).")
    prior_alpha: float = setting(1.0, "Beta prior's successes.", above=0.0, high=1e9)
    prior_beta: float = setting(1.0, "Beta prior's failures.", above=0.0, high=1e9)
    top_two: bool = setting(False, "thompson, discounted: top-two weights (the share of "
                            "posterior draws in which an arm is first or second), which "
                            "finds the best arm sooner at some cost in reward.")
    indifference: float = setting(0.0, "thompson, discounted: the smallest difference of mean "
                                  "reward that matters. Arms within it of the best share the "
                                  "traffic equally, so identical arms end up uniform (0: plain "
                                  "probability matching, under which identical arms wander).",
                                  low=0.0)
    epsilon: float = setting(0.1, "epsilon_greedy: the exploration rate (the starting one "
                             "of the exponential schedule).", low=0.0, high=1.0)
    epsilon_schedule: Literal["constant", "auer", "exponential"] = setting(
        "constant", "epsilon_greedy: constant; auer, min(1, cK/(d^2 t)); exponential, "
        "max(epsilon_min, epsilon decay^t), t the pulls so far.")
    epsilon_c: float = setting(0.1, "The auer schedule's c.", above=0.0, high=1e6)
    epsilon_d: float = setting(0.1, "The auer schedule's d (at most the smallest gap "
                               "between arm means).", above=0.0, high=1.0)
    epsilon_decay: float = setting(0.999, "The exponential schedule's decay per pull.",
                                   above=0.0, high=1.0)
    epsilon_min: float = setting(0.01, "The exponential schedule's floor.", low=0.0, high=1.0)
    explore_excludes_best: bool = setting(False, "epsilon_greedy: explore over the other "
                                          "arms only (Seldon's router).")
    ucb_scale: float = setting(1.0, "UCB algorithms: the factor B of the bonus.", above=0.0,
                               high=1e6)
    xi: float = setting(0.6, "sliding_window, discounted_ucb: xi of the bonus.", above=0.0,
                        high=100.0)
    window: int = setting(1000, "sliding_window: how many of the newest rewards count.",
                          low=10, high=10**6)
    discount: float = setting(0.99, "discounted, discounted_ucb: each reward weighs "
                              "discount^(newer rewards).", above=0.5, high=1.0)
    decide_threshold: float | None = setting(0.95, "Decide when the leader's P(best) stays at "
                                             "or above this (null: never by itself).",
                                             above=0.5, high=1.0)
    decide_after_seconds: float = setting(3600.0, "How long P(best) must stay above the "
                                          "threshold (checked at each re-allocation).",
                                          low=0.0, high=365 * 86400.0)
    decide_min_rewards: int = setting(40, "Rewards each arm needs before a decision.", low=0,
                                      high=10**9)
    on_decision: Literal["promote", "stop"] = setting(
        "promote", "promote: stop and make the leader's version production; stop: stop and "
        "leave production where it is.")
    period_seconds: int = setting(3600, "Length of the periods of the per-period-weighted "
                                  "means.", low=1, high=365 * 86400)


def _f(x: Any) -> float | None:
    """A JSON number, or None for NaN and infinities."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _config(settings: BanditSettings) -> PolicyConfig:
    family = {"auto": "auto", "bernoulli": "binary", "gaussian": "gaussian"}
    return PolicyConfig(
        algorithm=settings.algorithm, family=family[settings.reward_model],
        prior_alpha=settings.prior_alpha, prior_beta=settings.prior_beta,
        epsilon=settings.epsilon, schedule=settings.epsilon_schedule,
        auer_c=settings.epsilon_c, auer_d=settings.epsilon_d, decay=settings.epsilon_decay,
        epsilon_min=settings.epsilon_min, explore_excludes_best=settings.explore_excludes_best,
        scale=settings.ucb_scale, xi=settings.xi, window=settings.window,
        discount=settings.discount, floor=settings.min_share,
        min_obs=settings.min_units_per_arm, top_two=settings.top_two,
        indifference=settings.indifference,
        low=settings.reward_low, high=settings.reward_high)


def _newest(settings: BanditSettings) -> int:
    """How many of the newest rewards the algorithm reads."""
    if settings.algorithm == "sliding_window":
        return settings.window
    if settings.algorithm in ("discounted", "discounted_ucb") and settings.discount < 1.0:
        return min(int(math.log(_DISCOUNT_TAIL) / math.log(settings.discount)) + 1, 10**6)
    return 0


@dataclass
class _Arms:
    """The report's per-arm inputs, in the order of the experiment's variants."""

    stats: ArmStats
    pulls: np.ndarray
    errors: np.ndarray
    late: np.ndarray
    expired: np.ndarray
    recent: float
    periods: tuple[np.ndarray, np.ndarray, np.ndarray]
    unlogged: int


def _arms(settings: BanditSettings, state: State, exp: Experiment,
          stats: Mapping[str, Any]) -> _Arms:
    names = exp.variants
    k = len(names)
    rewards = stats.get("rewards") or {}
    by_arm = rewards.get("arms") or {}
    logged = stats.get("pulls") or {}

    def col(source: Mapping[str, Any], key: str, default: float = 0.0) -> np.ndarray:
        return np.array([float((source.get(v) or {}).get(key, default) or default)
                         for v in names])

    n, s, ss = col(by_arm, "n"), col(by_arm, "sum"), col(by_arm, "sum_sq")
    lo = np.array([np.nan if (by_arm.get(v) or {}).get("min") is None else
                   float(by_arm[v]["min"]) for v in names])
    hi = np.array([np.nan if (by_arm.get(v) or {}).get("max") is None else
                   float(by_arm[v]["max"]) for v in names])
    non_binary = col(by_arm, "non_binary").sum()
    late = col(by_arm, "late")
    n_before = col(by_arm, "n_before")
    answered, answered_before = col(logged, "answered"), col(logged, "answered_before")
    requests, errors, recent = col(logged, "requests"), col(logged, "errors"), col(
        logged, "recent")
    # Served before the attribution cutoff and never rewarded: left out, or imputed.
    expired = np.maximum(answered_before - n_before, 0.0)
    pending = np.maximum((answered - answered_before) - (n - n_before), 0.0)
    missing = settings.missing_reward
    if missing is not None:
        n, s, ss = n + expired, s + expired * missing, ss + expired * missing * missing
        lo = np.where(expired > 0, np.fmin(lo, missing), lo)
        hi = np.where(expired > 0, np.fmax(hi, missing), hi)
    binary = non_binary == 0 and missing in (None, 0.0, 1.0)
    index = {v: i for i, v in enumerate(names)}
    newest = [(index[a], float(x)) for a, x in rewards.get("newest") or [] if a in index]
    arm_idx = np.array([a for a, _ in newest], dtype=int)
    values = np.array([x for _, x in newest], dtype=float)
    window = slice(0, min(settings.window, len(newest)))
    wa, wv = arm_idx[window], values[window]
    weights = settings.discount ** np.arange(len(newest), dtype=float)
    removed = set(state.get("removed") or [])

    def count(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.bincount(a, weights=w, minlength=k).astype(float)

    arm_stats = ArmStats(
        n, s, ss, pending=pending, lo=lo, hi=hi,
        window_n=count(wa, np.ones(wa.size)), window_s=count(wa, wv),
        window_ss=count(wa, wv * wv),
        disc_n=count(arm_idx, weights), disc_s=count(arm_idx, weights * values),
        disc_ss=count(arm_idx, weights * values * values),
        active=np.array([v not in removed for v in names]), binary=bool(binary),
        added=np.array([v in (state.get("added_at") or {}) for v in names]))
    periods = sorted({int(p[0]) for p in rewards.get("periods") or []})
    row = {p: i for i, p in enumerate(periods)}
    pn, ps, pss = (np.zeros((len(periods), k)) for _ in range(3))
    for start, arm, cnt, total, total_sq in rewards.get("periods") or []:
        if arm in index:
            pn[row[int(start)], index[arm]] = cnt
            ps[row[int(start)], index[arm]] = total
            pss[row[int(start)], index[arm]] = total_sq
    credited = col(by_arm, "n") + late  # rewards whose request the log may lack
    unlogged = int(np.maximum(credited - requests, 0.0).sum())
    return _Arms(arm_stats, np.maximum(requests, credited), errors, late, expired,
                 float(recent.sum()), (pn, ps, pss), unlogged)


class Bandit(Strategy[BanditSettings]):
    name = "bandit"
    summary = "moves traffic to the variant that earns the most reward, while it learns"
    settings_type = BanditSettings
    min_variants = 1

    # ------------------------------------------------------------ settings

    def check(self, settings: BanditSettings, exp: Experiment) -> None:
        if not settings.reward_high > settings.reward_low:
            raise SettingsError("bandit.reward_high", "must be above reward_low")
        if settings.min_share * len(exp.variants) > 1.0:
            raise SettingsError("bandit.min_share", f"{settings.min_share:g} for each of "
                                f"{len(exp.variants)} arms is more than all the traffic")
        if settings.on_decision == "promote" and settings.decide_threshold is not None:
            foreign = [v for v in exp.variants if not exp.own_variant(v)]
            if foreign:
                raise SettingsError("bandit.on_decision", f"{foreign[0]} "
                                    f"({exp.labels[foreign[0]]}) is not a version of "
                                    f"{exp.endpoint!r}, so it could not be promoted; use "
                                    "'stop', or decide_threshold null")

    # ------------------------------------------------------------ routing

    @staticmethod
    def _shares(state: State, exp: Experiment) -> list[float]:
        shares = state.get("shares") or {}
        out = [max(float(shares.get(v, 0.0)), 0.0) for v in exp.variants]
        if not sum(out) > 0:
            removed = set(state.get("removed") or [])
            out = [0.0 if v in removed else 1.0 for v in exp.variants]
        return out

    def initial_state(self, settings: BanditSettings, exp: Experiment) -> State:
        k = len(exp.variants)
        shares = [1.0 / k] * k
        return {"shares": dict(zip(exp.variants, shares, strict=True)), "removed": [],
                "owners": pack_owners(owners_for(shares)) if settings.sticky else None,
                "updated_at": None, "updates": 0, "phase": "uniform", "leader": None,
                "above_since": None, "added_at": {}}

    def policy(self, settings: BanditSettings, state: State, exp: Experiment) -> RoutingPolicy:
        packed = state.get("owners") if settings.sticky else None
        owners = unpack_owners(packed) if packed else ()
        if owners and max(owners) >= len(exp.variants):
            owners = ()
        return AllocationPolicy(exp.variants, tuple(self._shares(state, exp)), exp.salt, owners)

    def describe(self, settings: BanditSettings, state: State, exp: Experiment
                 ) -> dict[str, Any]:
        shares = self._shares(state, exp)
        total = sum(shares)
        return {"bandit": self.dump(settings),
                "weights": {v: x / total for v, x in zip(exp.variants, shares, strict=True)},
                "removed": list(state.get("removed") or []), "phase": state.get("phase"),
                "leader": state.get("leader"), "updates": int(state.get("updates") or 0),
                "updated_at": state.get("updated_at"),
                "rewards": dict(state.get("observed") or {})}

    # ------------------------------------------------------------ report

    def needs(self, settings: BanditSettings, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        cutoff = now - settings.attribution_seconds
        return {"rewards": {"metric": settings.reward, "cutoff": cutoff,
                            "window_seconds": settings.attribution_seconds,
                            "period": settings.period_seconds, "newest": _newest(settings)},
                "pulls": {"cutoff": cutoff, "recent_since": now - settings.update_seconds}}

    def report(self, settings: BanditSettings, state: State, exp: Experiment,
               stats: Mapping[str, Any], now: float, rng: np.random.Generator
               ) -> dict[str, Any]:
        names = exp.variants
        arms = _arms(settings, state, exp, stats)
        st = arms.stats
        current = np.array(self._shares(state, exp))
        current = current / current.sum()
        alloc = allocate(_config(settings), st, batch=max(arms.recent, 1.0), rng=rng,
                         previous=current)
        weighted = period_weighted_means(*arms.periods) if arms.periods[0].size else [
            None] * len(names)
        leader, decision = self._decision(settings, state, exp, st, alloc, now)
        # each arm's mean reward: the posterior's, or the plain one for an arm without a
        # posterior (removed; a Gaussian arm with one reward)
        means = np.where(np.isfinite(alloc.means), alloc.means,
                         np.divide(st.s, st.n, out=np.full(len(names), np.nan),
                                   where=st.n > 0))
        known = [i for i in range(len(names)) if math.isfinite(means[i])]
        best_mean = max((means[i] for i in known if st.active[i]), default=None)
        regret_by = {names[i]: float(arms.pulls[i] * max(best_mean - means[i], 0.0))
                     for i in known} if best_mean is not None else {}
        rows = []
        for i, v in enumerate(names):
            n = float(st.n[i])
            mean = st.s[i] / n if n else None
            if mean is None:
                ci: tuple[float | None, float | None] = (None, None)
            elif st.binary and settings.reward_low == 0.0 and settings.reward_high == 1.0:
                from champion.analysis.proportions import wilson_interval  # scipy, lazily

                ci = wilson_interval(round(st.s[i]), int(n))
            else:
                var = max(st.ss[i] - st.s[i] ** 2 / n, 0.0) / (n - 1) if n > 1 else math.nan
                half = _Z95 * math.sqrt(var / n) if n > 1 else math.nan
                ci = (mean - half, mean + half)
            w = weighted[i]
            w_ci = w.ci() if w is not None else (None, None)
            rows.append({
                "name": v, "version": exp.labels.get(v, ""), "active": bool(st.active[i]),
                "share": _f(current[i]), "next_share": _f(alloc.shares[i]),
                "pulls": int(arms.pulls[i]), "errors": int(arms.errors[i]),
                "rewards": int(n), "pending": int(st.pending[i]), "late": int(arms.late[i]),
                "expired": int(arms.expired[i]), "reward_sum": _f(st.s[i]),
                "mean": {"estimate": _f(mean), "low": _f(ci[0]), "high": _f(ci[1])},
                "weighted_mean": {"estimate": _f(w.mean) if w else None, "low": _f(w_ci[0]),
                                  "high": _f(w_ci[1]), "periods": w.periods if w else 0},
                "posterior": {"estimate": _f(alloc.means[i]), "low": _f(alloc.ci_low[i]),
                              "high": _f(alloc.ci_high[i])},
                "prob_best": _f(alloc.prob_best[i]),
                "regret": _f(regret_by.get(v))})
        body: dict[str, Any] = {
            "bandit": self.dump(settings), "algorithm": settings.algorithm,
            "reward": settings.reward,
            "model": "bernoulli" if alloc.family == "binary" else "gaussian",
            "phase": alloc.phase, "reason": alloc.reason, "error": alloc.error,
            "epsilon": alloc.epsilon, "arms": rows, "leader": leader,
            "totals": {"pulls": int(arms.pulls.sum()), "rewards": int(st.n.sum()),
                       "cumulative_reward": _f(st.s.sum()), "pending": int(st.pending.sum()),
                       "late": int(arms.late.sum()), "unlogged": arms.unlogged},
            "regret": {"estimate": _f(sum(regret_by.values())) if regret_by else None,
                       "against": leader, "best_mean": _f(best_mean)},
            "decision": decision, "updates": int(state.get("updates") or 0),
            "updated_at": state.get("updated_at"), "removed": list(state.get("removed") or []),
        }
        body["next"] = self._next(settings, state, exp, body, now)
        body["view"] = _view(body, exp, settings)
        return body

    def _decision(self, settings: BanditSettings, state: State, exp: Experiment,
                  st: ArmStats, alloc: Allocation, now: float
                  ) -> tuple[str | None, dict[str, Any]]:
        names = exp.variants
        p = np.where(st.active & np.isfinite(alloc.prob_best), alloc.prob_best, -1.0)
        leader = names[int(np.argmax(p))] if (p >= 0).any() else None
        threshold = settings.decide_threshold
        out: dict[str, Any] = {"threshold": threshold, "leader": leader,
                               "prob_best": _f(p.max()) if leader else None,
                               "after_seconds": settings.decide_after_seconds,
                               "min_rewards": settings.decide_min_rewards,
                               "above_since": None, "held_seconds": 0.0, "ready": False}
        if threshold is None:
            out["reason"] = "no automatic decision (decide_threshold is null): promote by hand"
            return leader, out
        if int(st.active.sum()) < 2:
            out["reason"] = "one arm: nothing to decide (promote by hand)"
            return leader, out
        fewest = int(st.n[st.active].min())
        if fewest < settings.decide_min_rewards:
            out["reason"] = (f"waiting for {settings.decide_min_rewards} rewards per arm "
                             f"(fewest {fewest})")
            return leader, out
        if alloc.phase != "adaptive" or leader is None or p.max() < threshold:
            out["reason"] = (f"P(best) of {leader} is {100 * max(p.max(), 0):.1f}%, below "
                             f"{100 * threshold:g}%" if leader else "no posterior yet")
            return leader, out
        since = state.get("above_since") if state.get("leader") == leader else None
        since = float(since) if since is not None else now
        held = max(now - since, 0.0)
        out.update(above_since=since, held_seconds=held,
                   ready=held >= settings.decide_after_seconds)
        out["reason"] = (f"P(best) of {leader} is {100 * p.max():.1f}% (at least "
                         f"{100 * threshold:g}%) for {held:.0f} s of "
                         f"{settings.decide_after_seconds:g} s")
        return leader, out

    def _next(self, settings: BanditSettings, state: State, exp: Experiment,
              body: Mapping[str, Any], now: float) -> dict[str, Any]:
        if exp.status != "running":
            return {"action": "none", "reason": f"the experiment is {exp.status}"}
        decision = body["decision"]
        leader = body["leader"]
        if decision.get("ready") and leader is not None:
            what = ("promote" if settings.on_decision == "promote" else "stop")
            return {"action": what, "variant": leader,
                    "reason": f"{leader} is best: {decision['reason']}; "
                              + (f"promoting {leader} ({exp.labels[leader]})"
                                 if what == "promote" else "stopping (on_decision: stop)")}
        last = state.get("updated_at")
        at = (float(last) + settings.update_seconds) if last is not None else now
        return {"action": "update", "at": at,
                "reason": f"re-allocate ({body['reason']})"}

    # ------------------------------------------------------------ controller

    def cadence(self, settings: BanditSettings, exp: Experiment) -> float | None:
        return settings.update_seconds

    def step(self, settings: BanditSettings, state: State, exp: Experiment,
             report: Mapping[str, Any], now: float) -> Step | None:
        if exp.status != "running":
            return None
        names = exp.variants
        shares = [float(a["next_share"] or 0.0) for a in report["arms"]]
        if not sum(shares) > 0:
            shares = self._shares(state, exp)
        packed = state.get("owners") if settings.sticky else None
        owners = None
        if settings.sticky:
            previous = unpack_owners(packed) if packed else None
            if previous and max(previous) >= len(names):
                previous = None
            owners = pack_owners(owners_for(shares, previous))
        decision = report.get("decision") or {}
        observed = {a["name"]: a["rewards"] for a in report["arms"]}
        nxt = report.get("next") or {}
        current = self._shares(state, exp)
        total, now_total = sum(shares), sum(current)
        same = (state.get("observed") == observed and state.get("updated_at") is not None
                and all(abs(a / total - b / now_total) <= 1e-9
                        for a, b in zip(shares, current, strict=True))
                and state.get("leader") == report.get("leader")
                and state.get("above_since") == decision.get("above_since")
                and state.get("phase") == report.get("phase")
                and state.get("error") == report.get("error"))
        if same and nxt.get("action") not in ("promote", "stop"):
            return None  # nothing new since the last update: no write, no point
        new: State = {**state, "shares": dict(zip(names, shares, strict=True)),
                      "owners": owners, "updated_at": now,
                      "updates": int(state.get("updates") or 0) + 1,
                      "phase": report.get("phase"), "error": report.get("error"),
                      "leader": report.get("leader"),
                      "above_since": decision.get("above_since"), "observed": observed}
        point = self._point(report, shares, names)
        if nxt.get("action") in ("promote", "stop"):
            verdict: dict[str, Any] = ({"promote": nxt["variant"]}
                                       if nxt["action"] == "promote" else {"action": "keep"})
            return Step(state=new, action="stop", decision=verdict, reason=nxt["reason"],
                        point=point)
        return Step(state=new, point=point)

    @staticmethod
    def _point(report: Mapping[str, Any], shares: list[float], names: tuple[str, ...]
               ) -> dict[str, Any]:
        arms = report["arms"]
        total = sum(shares) or 1.0
        return {
            "share": {v: x / total for v, x in zip(names, shares, strict=True)},
            "pbest": {a["name"]: a["prob_best"] for a in arms},
            "n": {a["name"]: a["rewards"] for a in arms},
            "pulls": {a["name"]: a["pulls"] for a in arms},
            "mean": {a["name"]: a["posterior"]["estimate"] for a in arms},
            "low": {a["name"]: a["posterior"]["low"] for a in arms},
            "high": {a["name"]: a["posterior"]["high"] for a in arms},
            "reward": report["totals"]["cumulative_reward"],
            "regret": report["regret"]["estimate"], "phase": report.get("phase"),
            "update": int(report.get("updates") or 0) + 1,
        }

    def snapshot(self, report: Mapping[str, Any]) -> dict[str, Any] | None:
        return None  # every re-allocation is a point (Step.point): no other points

    # ------------------------------------------------------------ people

    def promotable(self, settings: BanditSettings, state: State, exp: Experiment,
                   report: Mapping[str, Any] | None) -> str | None:
        leader = (report or {}).get("leader") or state.get("leader")
        if leader:
            return str(leader)
        shares = self._shares(state, exp)
        return exp.variants[int(np.argmax(shares))]

    def revise(self, settings: BanditSettings, state: State, exp: Experiment,
               new_settings: BanditSettings, new_exp: Experiment, removed: tuple[str, ...],
               now: float) -> State:
        before = set(exp.variants)
        added = [v for v in new_exp.variants if v not in before]
        gone = set(state.get("removed") or []) | set(removed)
        active = [v for v in new_exp.variants if v not in gone]
        if not active:
            raise SettingsError("remove_variants", "a bandit keeps at least one arm")
        old = self._shares(state, exp)
        kept = {v: x for v, x in zip(exp.variants, old, strict=True) if v not in gone}
        total = sum(kept.values())
        k = len(active)
        rest = 1.0 - len(added) / k
        shares: dict[str, float] = {v: 0.0 for v in new_exp.variants}
        for v, x in kept.items():
            shares[v] = rest * (x / total if total > 0 else 1.0 / len(kept))
        for v in added:
            shares[v] = 1.0 / k  # forced exploration until it has min_units_per_arm
        ordered = [shares[v] for v in new_exp.variants]
        owners = None
        if new_settings.sticky:
            packed = state.get("owners")
            previous = unpack_owners(packed) if packed else None
            owners = pack_owners(owners_for(ordered, previous))
        return {**state, "shares": shares, "owners": owners,
                "removed": [v for v in new_exp.variants if v in gone],
                "added_at": {**(state.get("added_at") or {}), **{v: now for v in added}},
                "leader": None, "above_since": None, "revised_at": now}


# --------------------------------------------------------------------------- view


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _view(body: Mapping[str, Any], exp: Experiment, settings: BanditSettings
          ) -> dict[str, Any]:
    arms = body["arms"]
    totals = body["totals"]
    alerts = []
    if body.get("error"):
        alerts.append(alert("rewards", "error", "Allocation frozen", body["reason"],
                            greys=("means", "pbest")))
    if totals["unlogged"]:
        alerts.append(alert("unlogged", "warning", "Rewards for requests the log lacks",
                            f"{totals['unlogged']} rewards belong to requests the request "
                            "log does not have (the log is off, or rows were lost at a hard "
                            "kill); they are credited from their request ids, and those "
                            "requests are missing from the pulls and the pending counts."))
    if totals["late"]:
        alerts.append(alert("late", "info", "Late rewards", f"{totals['late']} rewards came "
                            f"more than {settings.attribution_seconds:g} s after their request"
                            " and were left out."))
    failing = [a for a in arms if a["pulls"] >= 20 and a["errors"] / a["pulls"] > 0.05]
    for a in failing:
        alerts.append(alert(f"errors_{a['name']}", "warning", f"{a['name']} fails",
                            f"{a['name']} answered {a['errors']} of {a['pulls']} requests "
                            "with a server error; failed requests earn no reward here unless "
                            "missing_reward is set."))
    if body["phase"] in ("adaptive", "exploring"):
        alerts.append(alert("bias", "info", "Means under adaptive allocation",
                            "The plain per-arm means are biased by the changing allocation "
                            "(arXiv 1905.11397); the period-weighted means weigh each period "
                            "by its traffic. For an effect size to ship on, confirm with an "
                            "A/B test."))
    rows = [{"variant": a["name"] + ("" if a["active"] else " (removed)"),
             "version": a["version"], "share": a["share"], "next": a["next_share"],
             "pulls": a["pulls"], "rewards": a["rewards"], "pending": a["pending"],
             "mean": a["mean"], "weighted": a["weighted_mean"],
             "posterior": a["posterior"], "pbest": a["prob_best"],
             "reward_sum": a["reward_sum"], "regret": a["regret"]} for a in arms]
    decision = body["decision"]
    regret = body["regret"]
    summary = [
        {"item": "algorithm", "value": f"{body['algorithm']} ({body['model']} rewards, "
                                       f"metric {body['reward']})"},
        {"item": "phase", "value": f"{body['phase']}: {body['reason']}"},
        {"item": "re-allocations", "value": str(body["updates"])},
        {"item": "cumulative reward", "value": f"{totals['cumulative_reward'] or 0:.6g} over "
                                               f"{totals['rewards']} rewards"},
        {"item": "regret estimate", "value": "-" if regret["estimate"] is None else
         f"{regret['estimate']:.4g} against {regret['against']} (posterior means)"},
        {"item": "decision", "value": decision.get("reason", "")},
        {"item": "next", "value": body["next"]["reason"]},
    ]
    names = [a["name"] for a in arms]
    means_chart = [
        {"label": "mean", "x": names, "y": [a["mean"]["estimate"] for a in arms],
         "low": [a["mean"]["low"] for a in arms], "high": [a["mean"]["high"] for a in arms]},
        {"label": "period-weighted", "x": names,
         "y": [a["weighted_mean"]["estimate"] for a in arms],
         "low": [a["weighted_mean"]["low"] for a in arms],
         "high": [a["weighted_mean"]["high"] for a in arms]},
    ]
    leader = body.get("leader")
    lead = next((a for a in arms if a["name"] == leader), None)
    shares = ", ".join(f"{a['name']} {_pct(a['share'])}" for a in arms if a["active"])
    if body["phase"] == "uniform":
        headline = f"{body['algorithm']} on {body['reward']}: {body['reason']}; shares {shares}"
    elif lead is not None:
        headline = (f"{body['algorithm']} on {body['reward']}: best so far {leader} "
                    f"(P(best) {_pct(lead['prob_best'])}, mean "
                    f"{lead['posterior']['estimate'] or 0:.4g}); shares {shares}; "
                    f"{decision.get('reason', '')}")
    else:
        headline = f"{body['algorithm']} on {body['reward']}: {body['reason']}"
    headline += f"; next: {body['next']['action']}"
    return view(headline, alerts=alerts, tables=[
        table("arms", "Arms", [
            column("variant", "arm"), column("version", "version"),
            column("share", "share", "pct"), column("next", "next share", "pct"),
            column("pulls", "pulls", "int"), column("rewards", "rewards", "int"),
            column("pending", "pending", "int"), column("mean", "mean [95% CI]", "ci"),
            column("weighted", "period-weighted mean [CI]", "ci"),
            column("pbest", "P(best)", "pct"), column("reward_sum", "total reward", "num"),
            column("regret", "regret estimate", "num")], rows),
        table("summary", "Bandit", [column("item", ""), column("value", "")], summary),
    ], charts=[
        chart("allocation", "Allocation over time", "line",
              [{"label": v, "path": f"share.{v}"} for v in exp.variants], source="timeline",
              y_format="pct"),
        chart("pbest", "P(best) over time", "line",
              [{"label": v, "path": f"pbest.{v}"} for v in exp.variants], source="timeline",
              y_format="pct"),
        chart("means", "Mean reward per arm with its interval", "bar", means_chart,
              x_format="text"),
        chart("mean_over_time", "Posterior mean per arm over time", "band",
              [{"label": v, "path": f"mean.{v}", "low_path": f"low.{v}",
                "high_path": f"high.{v}"} for v in exp.variants], source="timeline"),
        chart("reward", "Cumulative reward and regret estimate", "line",
              [{"label": "cumulative reward", "path": "reward"},
               {"label": "regret estimate", "path": "regret"}], source="timeline"),
    ])


register(Bandit())
