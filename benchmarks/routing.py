"""``python -m benchmarks.routing``: what an experiment adds to each request, in process.

The inference path differs with an experiment in two places: the experiment's policy picks
the arm, and the request id carries it (signed). This times exactly that work per request,
without HTTP or a model (so a loaded machine disturbs it less than the wrk runs), for no
experiment, a 50/50 A/B test (sticky by unit) and a bandit over three versions (a weighted
draw per request, or sticky by unit); then what a bandit costs off the request path: a
server process rebuilding its policy when the state version moves, and the controller's
report and re-allocation (without the store's queries). Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import numpy as np

from champion.events.ids import RequestIds
from champion.routing import RoutingRequest
from champion.strategies import Experiment, get


def per_call(fn: Callable[[int], object], n: int, repeats: int) -> float:
    """Median seconds per call of ``fn(i)`` over ``repeats`` runs of ``n`` calls."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def experiment(strategy: str, variants: tuple[str, ...]) -> Experiment:
    return Experiment(id="exp_0a1b2c3d", endpoint="bench", strategy=strategy,
                      variants=variants, labels={v: f"bench:{i + 1}" for i, v in
                                                 enumerate(variants)},
                      control=variants[0], salt="5a1t", status="running", started_at=0.0)


def synthetic_stats(names: tuple[str, ...]) -> dict[str, object]:
    rates = dict(zip(names, (0.3, 0.4, 0.5), strict=True))
    arms = {v: {"n": 2000, "sum": 2000 * r, "sum_sq": 2000 * r, "min": 0.0, "max": 1.0,
                "non_binary": 0, "late": 0, "n_before": 0, "sum_before": 0.0}
            for v, r in rates.items()}
    periods = [[3600 * h, v, 100, 100 * r, 100 * r] for h in range(20)
               for v, r in rates.items()]
    pulls = {v: {"requests": 2100, "errors": 0, "answered": 2100, "answered_before": 0,
                 "recent": 100} for v in names}
    return {"rewards": {"arms": arms, "periods": periods, "newest": []}, "pulls": pulls}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.routing", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=50_000, help="calls per run [50000]")
    p.add_argument("--repeats", type=int, default=5, help="runs per figure (median) [5]")
    args = p.parse_args(argv)
    n, repeats = args.requests, args.repeats
    ids = RequestIds("ab" * 16)
    keys = [ids.key() for _ in range(n)]
    units = [f"user-{i}" for i in range(n)]
    rng = random.Random(1)

    ab_exp = experiment("ab", ("control", "candidate"))
    ab = get("ab")
    ab_settings = ab.settings({}, ab_exp)
    ab_policy = ab.policy(ab_settings, ab.initial_state(ab_settings, ab_exp), ab_exp)

    bandit_exp = experiment("bandit", ("a", "b", "c"))
    bandit = get("bandit")
    bandit_settings = bandit.settings({}, bandit_exp)
    state = bandit.initial_state(bandit_settings, bandit_exp)
    report = bandit.report(bandit_settings, state, bandit_exp,
                           synthetic_stats(bandit_exp.variants), 72_000.0,
                           np.random.default_rng(0))
    step = bandit.step(bandit_settings, state, bandit_exp, report, 72_000.0)
    assert step is not None and step.state is not None
    state = step.state  # a learned, uneven allocation with a bucket table
    bandit_policy = bandit.policy(bandit_settings, state, bandit_exp)
    index = {v: i for i, v in enumerate(bandit_exp.variants)}

    def none(i: int) -> object:
        return ids.issue(keys[i], version=1)

    def ab_unit(i: int) -> object:
        d = ab_policy.decide(RoutingRequest(keys[i], units[i]), rng)
        return ids.issue(keys[i], version=1, experiment=ab_exp.id,
                         arm=ab_exp.variants.index(d.variant))

    def bandit_draw(i: int) -> object:
        d = bandit_policy.decide(RoutingRequest(keys[i]), rng)
        return ids.issue(keys[i], version=1, experiment=bandit_exp.id, arm=index[d.variant])

    def bandit_unit(i: int) -> object:
        d = bandit_policy.decide(RoutingRequest(keys[i], units[i]), rng)
        return ids.issue(keys[i], version=1, experiment=bandit_exp.id, arm=index[d.variant])

    base = per_call(none, n, repeats)
    rows = [("no experiment: sign the id (version)", base),
            ("A/B, sticky unit: hash the unit, sign the id", per_call(ab_unit, n, repeats)),
            ("bandit, no unit: one weighted draw, sign the id",
             per_call(bandit_draw, n, repeats)),
            ("bandit, sticky unit: hash the unit, sign the id",
             per_call(bandit_unit, n, repeats))]
    rebuild = per_call(lambda i: bandit.policy(bandit_settings, state, bandit_exp),
                       max(n // 100, 10), repeats)
    update = per_call(lambda i: bandit.report(bandit_settings, state, bandit_exp,
                                              synthetic_stats(bandit_exp.variants),
                                              72_000.0 + i, np.random.default_rng(i)),
                      max(n // 500, 5), repeats)
    print(f"Per request ({n} calls, median of {repeats} runs):\n")
    print("| path | µs per request | added to no experiment |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.2f} | {(seconds - base) * 1e6:+.2f} |")
    print("\nOff the request path, a bandit over three arms:\n")
    print(f"- each server process rebuilds its policy when the state moves: "
          f"{rebuild * 1e6:.0f} µs per re-allocation")
    print(f"- the controller's report and re-allocation, without the store's queries: "
          f"{update * 1e3:.2f} ms per update")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
