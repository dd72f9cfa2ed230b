"""How many impressions interleaving needs against an A/B test, on one click model.

``python -m benchmarks.interleave_sensitivity [--impressions 60000]`` simulates, in this
process (no server), the model ``tests/e2e/test_interleave.py`` drives through the real
server: 300 queries over a catalogue of 30 items whose relevance grade (0-3) is known; two
rankers that score relevance plus noise (the better one with less noise); a user who scans
the list from the top (a cascade: clicks by grade, stops when satisfied, gives up after a
skip with probability 1 - P_CONTINUE). It then estimates, at the long-run effects, how many
impressions each test needs for 80 % power at alpha 0.05:

* interleaving (team draft, the sign test of spec §1.7): decisive impressions for the win
  rate, divided by the share of impressions that are decisive;
* an A/B test on clicks per impression (two-sample z-test): both arms together, from the
  exact mean and variance of the cascade model's clicks on each ranker's lists (the
  difference is too small for a simulation of this size to pin down).

The rankers are self-contained functions, so the e2e test deploys them as they are.
"""

from __future__ import annotations

import argparse
import math
import random
from functools import cache

QUERIES = 300
P_CLICK = (0.02, 0.25, 0.55, 0.85)  # by grade
P_STOP = (0.3, 0.5, 0.7, 0.9)  # satisfied after a click, by grade
P_CONTINUE = 0.9  # after skipping an item


def ranker_good(q):  # type: ignore[no-untyped-def]
    import random

    def rel(d):  # type: ignore[no-untyped-def]
        return random.Random(f"rel-{q}-{d}").choices([0, 1, 2, 3], [55, 25, 14, 6])[0]

    noise = random.Random(f"good-{q}")
    scored = sorted(range(30), key=lambda d: -(rel(d) + noise.gauss(0, 0.7)))
    return [f"i{d}" for d in scored[:10]]


def ranker_bad(q):  # type: ignore[no-untyped-def]
    import random

    def rel(d):  # type: ignore[no-untyped-def]
        return random.Random(f"rel-{q}-{d}").choices([0, 1, 2, 3], [55, 25, 14, 6])[0]

    noise = random.Random(f"bad-{q}")
    scored = sorted(range(30), key=lambda d: -(rel(d) + noise.gauss(0, 1.3)))
    return [f"i{d}" for d in scored[:10]]


@cache
def relevance(q: int, item: str) -> int:
    """The true grade of an item for a query (what the rankers estimate with noise)."""
    d = int(item[1:])
    return random.Random(f"rel-{q}-{d}").choices([0, 1, 2, 3], [55, 25, 14, 6])[0]


def cascade(items: list[str], q: int, rng: random.Random) -> list[str]:
    """The user scans down: clicks by relevance, stops when satisfied, or gives up."""
    clicks = []
    for item in items:
        grade = relevance(q, item)
        if rng.random() < P_CLICK[grade]:
            clicks.append(item)
            if rng.random() < P_STOP[grade]:
                break
        elif rng.random() > P_CONTINUE:
            break
    return clicks


def click_distribution(items: list[str], q: int) -> list[float]:
    """P(the user clicks n times) on a list, exactly: a DP over the positions of the
    probability of still scanning with n clicks so far."""
    scanning = [1.0] + [0.0] * len(items)
    done = [0.0] * (len(items) + 1)
    for item in items:
        grade = relevance(q, item)
        c, stop = P_CLICK[grade], P_STOP[grade]
        nxt = [0.0] * (len(items) + 1)
        for n, p in enumerate(scanning):
            if p == 0:
                continue
            done[n + 1] += p * c * stop  # clicked, satisfied
            nxt[n + 1] += p * c * (1 - stop)  # clicked, goes on
            nxt[n] += p * (1 - c) * P_CONTINUE  # skipped, goes on
            done[n] += p * (1 - c) * (1 - P_CONTINUE)  # skipped, gives up
        scanning = nxt
    return [d + s for d, s in zip(done, scanning, strict=True)]


def _moments(lists: dict[int, list[str]]) -> tuple[float, float]:
    """Mean and variance of clicks per impression over the queries (uniform) and clicks."""
    m1 = m2 = 0.0
    for q, items in lists.items():
        dist = click_distribution(items, q)
        m1 += sum(n * p for n, p in enumerate(dist)) / len(lists)
        m2 += sum(n * n * p for n, p in enumerate(dist)) / len(lists)
    return m1, m2 - m1 * m1


def simulate(impressions: int, seed: int = 1) -> dict[str, float]:
    from champion.analysis.interleave import pair_outcomes, sample_size
    from champion.routing.interleave import team_draft

    rng = random.Random(seed)
    good = {q: ranker_good(q) for q in range(QUERIES)}
    bad = {q: ranker_bad(q) for q in range(QUERIES)}
    wins = losses = 0
    for i in range(impressions):
        q = i % QUERIES
        draft = team_draft(bad[q], good[q], 10, "sim", f"r{i}")
        clicked = cascade(list(draft.items), q, rng)
        positions = {draft.items.index(c): 1.0 for c in clicked}
        o = pair_outcomes("team_draft", draft.teams, 2, positions)[(0, 1)][0]
        wins += o == -1
        losses += o == 1
    win_rate = wins / (wins + losses)
    decisive = (wins + losses) / impressions
    interleaving = 1.02 * sample_size(win_rate) / decisive
    (mb, vb), (mg, vg) = _moments(bad), _moments(good)
    var = vb + vg
    z = 1.959964 + 0.841621  # alpha 0.05 two-sided, power 0.8
    ab = 2 * z * z * var / (mg - mb) ** 2
    return {"win_rate": win_rate, "decisive_share": decisive, "interleaving": interleaving,
            "clicks_bad": mb, "clicks_good": mg, "ab": ab, "ratio": ab / interleaving}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.interleave_sensitivity",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impressions", type=int, default=60_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    r = simulate(args.impressions, args.seed)
    print(f"interleaving: win rate {r['win_rate']:.4f}, decisive share "
          f"{r['decisive_share']:.3f} -> {math.ceil(r['interleaving']):,} impressions")
    print(f"A/B: clicks per impression {r['clicks_bad']:.4f} -> {r['clicks_good']:.4f} "
          f"({r['clicks_good'] / r['clicks_bad'] - 1:+.2%}) -> {math.ceil(r['ab']):,} "
          f"impressions (both arms)")
    print(f"ratio: the A/B test needs {r['ratio']:.0f}x the impressions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
