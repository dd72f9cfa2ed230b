"""The local autoscaler's rules: grow while calls queue and a core is idle, never onto a
busy machine, one free core per new worker, and stop only the idle workers above the floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from champion.runtime.autoscale import Autoscaler, CpuMeter, read_proc_stat
from champion.runtime.pool import PoolSpec, VersionPool

STAT = """cpu  100 5 50 800 20 0 5 0 0 0
cpu0 50 2 25 400 10 0 3 0 0 0
cpu1 50 3 25 400 10 0 2 0 0 0
intr 12345
"""


def test_proc_stat_idle_counts_idle_and_iowait_of_all_cpus() -> None:
    assert read_proc_stat(STAT) == (820.0, 980.0)
    with pytest.raises(ValueError):
        read_proc_stat("intr 1\n")


def test_the_meter_reads_idle_cores_between_two_readings(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 0 100 0 0 0 0\n")
    meter = CpuMeter(str(stat), cores=2)
    assert meter.idle_cores() == 0.0  # no earlier reading
    stat.write_text("cpu  150 0 0 250 0 0 0 0\n")  # 50 busy, 150 idle jiffies
    assert meter.idle_cores() == pytest.approx(2 * 150 / 200)


class FakePool:
    def __init__(self, calls: int, queued: int, *, waiters: int = 0, room: bool = True,
                 scalable: bool = True) -> None:
        self.window = (calls, queued)
        self.waiters = [object()] * waiters
        self.room = room
        self.scalable = scalable
        self.closed = False
        self.label = "m:1"
        self.workers: list[Any] = []
        self.starting = 0
        self.grown = 0
        self.shrunk = 0

    def take_window(self) -> tuple[int, int]:
        out, self.window = self.window, (0, 0)
        return out

    def can_grow(self) -> bool:
        return self.room

    def grow(self) -> None:
        self.grown += 1

    def shrink_idle(self, now: float, idle_for: float) -> None:
        self.shrunk += 1


def _tick(pools: list[FakePool], idle: float) -> None:
    Autoscaler(lambda: pools).tick(idle, 100.0)


def test_it_grows_when_most_calls_queued_and_a_core_is_idle() -> None:
    pool = FakePool(calls=40, queued=30)
    _tick([pool], idle=1.5)
    assert (pool.grown, pool.shrunk) == (1, 0)


def test_it_never_grows_onto_a_busy_machine() -> None:
    # a CPU-bound version on saturated cores: a second process adds only context switches
    pool = FakePool(calls=40, queued=40)
    _tick([pool], idle=0.2)
    assert pool.grown == 0


def test_callers_waiting_in_line_are_pressure_even_in_a_quiet_window() -> None:
    pool = FakePool(calls=1, queued=0, waiters=3)
    _tick([pool], idle=1.0)
    assert pool.grown == 1


def test_few_or_unqueued_calls_do_not_grow_and_let_idle_extras_stop() -> None:
    for calls, queued in ((3, 3), (40, 10)):
        pool = FakePool(calls=calls, queued=queued)
        _tick([pool], idle=2.0)
        assert (pool.grown, pool.shrunk) == (0, 1)


def test_one_free_core_per_new_worker_across_pools() -> None:
    a, b = FakePool(calls=40, queued=40), FakePool(calls=40, queued=40)
    _tick([a, b], idle=1.2)
    assert (a.grown, b.grown) == (1, 0)


def test_a_pool_at_max_workers_or_without_max_workers_is_left_alone() -> None:
    full, fixed = FakePool(calls=40, queued=40, room=False), FakePool(
        calls=40, queued=40, scalable=False)
    _tick([full, fixed], idle=2.0)
    assert (full.grown, fixed.grown, fixed.shrunk) == (0, 0, 0)


class FakeWorker:
    def __init__(self, inflight: int, last_active: float) -> None:
        self.inflight = inflight
        self.last_active = last_active
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def test_only_idle_workers_above_the_floor_stop_the_longest_idle_first(tmp_path: Path) -> None:
    pool = VersionPool(PoolSpec(key=("m", 1), manifest={}, workers=2, max_workers=5), tmp_path)
    assert pool.scalable
    busy, old, older, fresh = (FakeWorker(1, 0.0), FakeWorker(0, 50.0), FakeWorker(0, 10.0),
                               FakeWorker(0, 95.0))
    pool.workers = [busy, old, older, fresh]  # type: ignore[list-item]
    pool.shrink_idle(now=100.0, idle_for=30.0)
    # two above the floor of 2 may go: the idle ones past 30 s, the longest idle first
    assert [w.killed for w in (busy, old, older, fresh)] == [False, True, True, False]
    assert pool.workers == [busy, fresh] and pool.restarts == 0
    pool.shrink_idle(now=1000.0, idle_for=30.0)  # at the floor: nothing more stops
    assert pool.workers == [busy, fresh]


def test_the_window_counts_calls_that_queued(tmp_path: Path) -> None:
    pool = VersionPool(PoolSpec(key=("m", 1), manifest={}, workers=1, max_workers=1), tmp_path)
    assert not pool.scalable  # max_workers not above workers
    pool._window_calls, pool._window_queued = 7, 3
    assert pool.take_window() == (7, 3) and pool.take_window() == (0, 0)
