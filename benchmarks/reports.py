"""``python -m benchmarks.reports``: the store reads behind the experiments' reports, at volume.

A report is built off the request path, but every few seconds for as long as an experiment
runs (the timeline, a bandit's update, the dashboard), so its cost as the log grows is what
an endpoint pays after hours of traffic. For each size N (default 100,000 and 1,000,000) a
fresh SQLite store is filled straight (no server) with, per experiment, N logged requests or
N rewards, and each read is timed (median of ``--repeats``):

* interleaving: the newest 50,000 merged answers and their click feedback
  (``merged_requests``; N impressions, N/3 clicks);
* a bandit: the rewards credited to its arms (``arm_rewards``, N rewards): the first update
  of a server process reads them all; the next, after 1,000 new rewards, reads the tally it
  kept and the rows after it;
* an A/B test: per-arm exposure from the writer's totals (``arm_exposure``) and the per-unit
  sums of its feedback (``arm_unit_metrics``; N requests, N/3 feedback, 0.4 N units).

The baseline is the smallest size of the same run: each line gives the ratio of the largest
size's time to it, and that ratio per tenfold (1.0: flat in the log's size; 10: linear).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BATCH = 20_000
DAY = 86_400.0
WINDOW_S = 3600.0  # a bandit's attribution window (its default)


def _batches(n: int) -> Iterator[range]:
    for start in range(0, n, BATCH):
        yield range(start, min(start + BATCH, n))


def _request(i: int, n: int, now: float, experiment: str, **extra: Any) -> dict[str, Any]:
    return {"request_id": f"{experiment}-{i:020x}", "ts": now - DAY + DAY * i / n,
            "deployment": experiment, "version": 1 + i % 2, "target": "production",
            "status": 200, "latency_ms": 0.5 + (i % 1000) / 100, "batch_size": 1,
            "unit": None, "experiment": experiment, "arm": ("a", "b")[i % 2],
            "variant": f"{experiment}:{1 + i % 2}", "input": None, "output": None,
            "error": None, "detail": None, **extra}


def _feedback(i: int, now: float, ts: float, experiment: str, metric: str, value: float,
              arm: str | None, **extra: Any) -> dict[str, Any]:
    rid = f"{experiment}-{i:020x}"
    return {"ts": now, "deployment": experiment, "request_id": rid, "unit": None,
            "metric": metric, "value": value, "label": None, "dedup": rid,
            "experiment": experiment, "arm": arm, "version": 1, "served_at": ts, **extra}


def fill(store: Any, n: int, now: float) -> float:
    """Write the three experiments' rows; seconds taken."""
    started = time.perf_counter()
    detail = json.dumps({"teams": ["a", "b", "a", "b", "a"], "ids": ["i1", "i2", "i3", "i4"]})
    for part in _batches(n):
        store.insert_requests([_request(i, n, now, "il", detail=detail, unit=f"u{i % 5000}")
                               for i in part])
        store.insert_requests([_request(i, n, now, "ab", unit=f"u{int(i * 0.4)}")
                               for i in part])
        # every third request of each clicked or converted; the bandit's rewards by id alone
        store.insert_feedback([_feedback(i, now, now - DAY + DAY * i / n, "il", "clicks", 1.0,
                                         ("a", "b")[i % 2], label='"i2"')
                               for i in part if i % 3 == 0])
        store.insert_feedback([_feedback(i, now, now - DAY + DAY * i / n, "ab", "converted",
                                         float(i % 2), ("a", "b")[i % 2])
                               for i in part if i % 3 == 0])
        store.insert_feedback([_feedback(i, now - DAY + DAY * i / n + 5.0,
                                         now - DAY + DAY * i / n, "bd", "reward",
                                         float(i % 7 < 3), ("a", "b", "c")[i % 3])
                               for i in part])
    return time.perf_counter() - started


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def point(work: Path, n: int, repeats: int) -> dict[str, Any]:
    from champion.store import Store

    data = work / f"store-{n}"
    data.mkdir()
    now = time.time()
    store = Store.open(data)
    try:
        fill_s = fill(store, n, now)
    finally:
        store.close()

    out: dict[str, Any] = {"n": n, "fill_s": fill_s}
    store = Store.open(data)  # a fresh process's view: no bandit tally yet
    try:
        def rewards() -> Any:
            return store.arm_rewards("bd", "bd", "reward", window_seconds=WINDOW_S,
                                     cutoff=now - WINDOW_S, period=3600)

        t0 = time.perf_counter()
        first = rewards()
        out["bandit_first_update_s"] = time.perf_counter() - t0
        assert sum(a["n"] for a in first["arms"].values()) == n, first["arms"]
        nexts = []
        for k in range(repeats):
            store.insert_feedback([_feedback(n + k * 1000 + j, now, now - 1.0, "bd", "reward",
                                             1.0, ("a", "b", "c")[j % 3])
                                   for j in range(1000)])
            t0 = time.perf_counter()
            rewards()
            nexts.append(time.perf_counter() - t0)
        out["bandit_next_update_s"] = statistics.median(nexts)

        got = store.merged_requests("il", "il", "clicks", 50_000)
        assert got["total"] == n and len(got["requests"]) == min(n, 50_000)
        out["interleave_report_read_s"] = _median_s(
            lambda: store.merged_requests("il", "il", "clicks", 50_000), repeats)
        out["ab_exposure_s"] = _median_s(lambda: store.arm_exposure("ab"), repeats)
        out["ab_unit_metrics_s"] = _median_s(
            lambda: store.arm_unit_metrics("ab", "ab", settled_before=now), repeats)
    finally:
        store.close()
    out["store_mib"] = sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20
    return out


FIGURES = [
    ("interleave_report_read_s", "interleave: the newest 50,000 impressions and their clicks"),
    ("bandit_first_update_s", "bandit: first update of a process, every reward read"),
    ("bandit_next_update_s", "bandit: next update, 1,000 new rewards"),
    ("ab_exposure_s", "A/B: per-arm exposure (the writer's totals)"),
    ("ab_unit_metrics_s", "A/B: per-unit sums of the feedback"),
]


def per_tenfold(small: dict[str, Any], large: dict[str, Any], key: str) -> float:
    decades = math.log10(large["n"] / small["n"])
    ratio = large[key] / small[key] if small[key] > 0 else float("inf")
    return ratio ** (1 / decades) if decades > 0 else 1.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reports", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000",
                   help="comma-separated N, smallest first (the baseline) [100000,1000000]")
    p.add_argument("--repeats", type=int, default=5, help="timed reads per figure [5]")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    if len(sizes) < 2 or sizes[0] <= 0:
        p.error("--sizes needs two or more positive sizes")

    points = []
    with tempfile.TemporaryDirectory(prefix="champion-bench-reports-") as tmp:
        for n in sizes:
            pt = point(Path(tmp), n, max(args.repeats, 1))
            points.append(pt)
            print(f"N={n:,}: filled in {pt['fill_s']:.1f} s, store {pt['store_mib']:.0f} MiB",
                  flush=True)
    small, large = points[0], points[-1]
    print()
    heads = " | ".join(f"N={pt['n']:,}" for pt in points)
    print(f"| read | {heads} | "
          f"N={large['n']:,} ÷ N={small['n']:,} | per tenfold |")
    print(f"|---|{'---:|' * len(points)}---:|---:|")
    for key, title in FIGURES:
        cells = " | ".join(f"{pt[key] * 1000:,.1f} ms" for pt in points)
        ratio = large[key] / small[key] if small[key] > 0 else float("inf")
        print(f"| {title} | {cells} | {ratio:.2f} | {per_tenfold(small, large, key):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"points": points}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
