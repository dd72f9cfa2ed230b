"""The canary's window cache: what it folds in once equals reading every row afresh, it reads
only the unsettled tail at each check, and a busy endpoint's intervals are all judged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.registry.windows import GRACE_S, LatencySpec, WindowCache
from champion.strategies.canary import _interval_quantiles

START = 1000.0


def make_rows(n: int, span: float, seed: int = 1, error_rate: float = 0.02
              ) -> list[tuple[str, float, int, float]]:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(START, START + span, n))
    arms = rng.choice(["stable", "canary"], n, p=[0.75, 0.25])
    status = np.where(rng.random(n) < error_rate, 500, 200)
    ms = rng.lognormal(0.5, 0.4, n)
    return [(str(a), float(t), int(s), float(m)) for a, t, s, m in zip(arms, ts, status, ms,
                                                                     strict=True)]


class Log:
    """The request log as the store serves it: rows with since <= ts < until, in order,
    in chunks; only rows that have 'landed' (ts < landed) are visible."""

    def __init__(self, rows: list[tuple[str, float, int, float]]) -> None:
        self.rows = rows
        self.landed = -1.0
        self.read = 0

    def fetch(self, since: float, until: float | None) -> Any:
        got = [r for r in self.rows if since <= r[1] < min(until or np.inf, self.landed)]
        self.read += len(got)
        for i in range(0, len(got), 1000):
            yield got[i:i + 1000]


def direct(rows: list[tuple[str, float, int, float]], arm: str, spec: LatencySpec
           ) -> tuple[int, int, dict[int, float]]:
    mine = [r for r in rows if r[0] == arm]
    answered = [(ts, ms) for _, ts, st, ms in mine if st < 500]
    return (len(mine), sum(st >= 500 for _, _, st, _ in mine),
            _interval_quantiles(answered, START, spec.width, spec.q, spec.min_samples))


def test_checks_every_second_agree_with_reading_every_row_afresh() -> None:
    rows = make_rows(30_000, 60.0)
    log = Log(rows)
    spec = LatencySpec(width=5.0, q=0.99, min_samples=5)
    cache = WindowCache()
    for now in np.arange(START + 1, START + 70, 1.0):
        log.landed = now - 0.1  # the writer's flush lag
        got = cache.read("db", "exp_1", START, None, spec, log.fetch, now=float(now))
        visible = [r for r in rows if r[1] < log.landed]
        for arm in ("stable", "canary"):
            n, errors, intervals = direct(visible, arm, spec)
            assert got[arm]["requests"] == n
            assert got[arm]["errors"] == errors
            lat = got[arm]["latency"]
            assert lat["intervals"].keys() == intervals.keys()
            for i, q in intervals.items():
                assert lat["intervals"][i] == pytest.approx(q, rel=1e-12)
            answered = [ms for a, _, st, ms in visible if a == arm and st < 500]
            assert lat["answered"] == len(answered)
            if len(answered) >= 2_000:  # from a histogram: within a bin's width (~12 %)
                assert lat["overall"] == pytest.approx(float(np.quantile(answered, 0.99)),
                                                       rel=0.12)


def test_a_check_reads_only_the_rows_it_has_not_folded_in() -> None:
    rows = make_rows(60_000, 60.0)
    log = Log(rows)
    log.landed = START + 60.0
    spec = LatencySpec(width=10.0, q=0.5)
    cache = WindowCache()
    cache.read("db", "exp_1", START, None, spec, log.fetch, now=START + 60.0)
    first = log.read
    log.read = 0
    cache.read("db", "exp_1", START, None, spec, log.fetch, now=START + 61.0)
    tail = sum(1 for r in rows if r[1] >= START + 60.0 - GRACE_S)
    assert first >= len(rows)  # the first check reads the window once
    assert log.read <= tail + 2000 and log.read < len(rows) / 10


def test_a_busy_endpoint_has_every_interval_judged() -> None:
    """Before: the newest 20,000 samples per arm, which at 2,000 requests a second span 10 s:
    one 60 s interval, never the three the guardrail waits for."""
    n = 200_000
    rows = make_rows(n, 180.0, error_rate=0.0)
    log = Log(rows)
    log.landed = START + 200.0
    spec = LatencySpec(width=60.0, q=0.99, min_samples=5, cap=2_000)
    got = WindowCache().read("db", "exp_1", START, None, spec, log.fetch, now=START + 200.0)
    for arm in ("stable", "canary"):
        _, _, exact = direct(rows, arm, spec)
        assert sorted(got[arm]["latency"]["intervals"]) == [0, 1, 2]
        for i, q in exact.items():  # a uniform sample of 2,000 per interval
            assert got[arm]["latency"]["intervals"][i] == pytest.approx(q, rel=0.15)


def test_a_closed_window_is_read_once() -> None:
    rows = make_rows(5_000, 30.0)
    log = Log(rows)
    log.landed = START + 100.0
    cache = WindowCache()
    spec = LatencySpec(width=5.0, q=0.9)
    a = cache.read("db", "exp_1", START, START + 20.0, spec, log.fetch, now=START + 100.0)
    log.read = 0
    b = cache.read("db", "exp_1", START, START + 20.0, spec, log.fetch, now=START + 101.0)
    assert log.read == 0 and a == b
    assert a["stable"]["requests"] == sum(1 for r in rows if r[0] == "stable"
                                          and r[1] < START + 20.0)


def test_windows_are_kept_apart_and_bounded() -> None:
    rows = make_rows(2_000, 10.0)
    log = Log(rows)
    log.landed = START + 20.0
    cache = WindowCache(size=2)
    spec = LatencySpec(width=1.0, q=0.5)
    one = cache.read("db", "exp_1", START, None, spec, log.fetch, now=START + 20.0)
    other = cache.read("db", "exp_1", START + 5.0, None, spec, log.fetch, now=START + 20.0)
    assert other["stable"]["requests"] < one["stable"]["requests"]
    cache.read("db", "exp_2", START, None, None, log.fetch, now=START + 20.0)
    assert len(cache._windows) == 2
    no_latency = cache.read("db", "exp_2", START, None, None, log.fetch, now=START + 20.0)
    assert "latency" not in no_latency["stable"]
    with pytest.raises(ValueError):
        cache.read("db", "exp_3", float("nan"), None, spec, log.fetch)


def test_the_store_streams_an_experiments_rows_in_time_order(tmp_path: Path) -> None:
    from champion.store.db import Store

    store = Store.open(tmp_path)
    now = time.time()
    events = []
    for i in range(2_500):
        events.append({
            "request_id": f"r{i:06d}", "ts": now - 10 + (i * 7919 % 2500) / 250,
            "deployment": "churn", "version": 1, "target": "production",
            "status": 500 if i % 50 == 0 else 200, "latency_ms": 1.0 + i % 10,
            "batch_size": 1, "unit": None, "experiment": "exp_1" if i % 5 else "exp_2",
            "arm": "canary" if i % 2 else "stable", "variant": "churn:1", "input": None,
            "output": None, "error": None, "detail": None})
    store.insert_requests(events)
    chunks = list(store.arm_rows("exp_1", ["stable", "canary"], now - 10, now - 2, chunk=300))
    got = [r for c in chunks for r in c]
    want = sorted((e["arm"], e["ts"], e["status"], e["latency_ms"]) for e in events
                  if e["experiment"] == "exp_1" and now - 10 <= e["ts"] < now - 2)
    assert len(chunks) > 1 and all(len(c) <= 300 for c in chunks)
    for arm in ("stable", "canary"):
        ts = [r[1] for r in got if r[0] == arm]
        assert ts == sorted(ts)
    assert sorted(got) == want
