"""Autoscaling of the local runtime's workers, between a version's ``workers`` and its
``max_workers``.

A worker runs its calls one at a time, so a version with one worker answers at most one call
per call's duration: a model that waits on I/O (a feature store, an index) for 50 ms serves 20
requests a second however idle the machine is. Every ``INTERVAL`` the scaler looks at each
pool that may grow and adds one worker when both hold:

* **calls waited**: at least half of the window's calls (and at least ``MIN_CALLS``) found
  no idle worker and queued behind another call, or callers are waiting in line now;
* **a core is free**: the machine's CPUs were at least ``FREE_CORES`` cores idle over the
  window (``/proc/stat``; the load average where there is none). A CPU-bound version on a
  busy machine gains nothing from a second process but context switches and colder
  caches, and takes cores from the server that feeds it.

Workers start from the fork server in milliseconds, so scaling up one at a time per window
is quick enough (a pool reaches 4 workers in about 2 s). A worker above ``workers`` that has
had no call for ``scale_down_seconds`` stops; the ``workers`` floor is never stopped (the
idle timeout, which stops a whole unused version, still applies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from champion.runtime.pool import VersionPool

log = logging.getLogger("champion.runtime")

INTERVAL = 0.5
MIN_CALLS = 4
QUEUED_SHARE = 0.5
FREE_CORES = 0.5


def read_proc_stat(text: str) -> tuple[float, float]:
    """(idle, total) jiffies of all CPUs from the text of ``/proc/stat``."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [float(x) for x in line.split()[1:]]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
            # guest time is already counted in user and nice
            return idle, sum(fields[:8])
    raise ValueError("no aggregate cpu line in /proc/stat")


class CpuMeter:
    """Idle cores since the previous reading."""

    def __init__(self, path: str = "/proc/stat", cores: int | None = None) -> None:
        self.path = path
        self.cores = cores or os.cpu_count() or 1
        self._last: tuple[float, float] | None = None

    def _sample(self) -> tuple[float, float] | None:
        try:
            with open(self.path) as f:
                return read_proc_stat(f.read())
        except (OSError, ValueError):
            return None

    def idle_cores(self) -> float:
        now = self._sample()
        if now is None:  # no /proc (macOS): what the load average leaves
            with contextlib.suppress(OSError, AttributeError):
                return max(0.0, self.cores - os.getloadavg()[0])
            return 0.0
        last, self._last = self._last, now
        if last is None or now[1] <= last[1]:
            return 0.0
        return self.cores * (now[0] - last[0]) / (now[1] - last[1])


class Autoscaler:
    """One task per runtime: every ``interval``, each pool that may grow is judged."""

    def __init__(self, pools: Callable[[], Iterable[VersionPool]], *,
                 scale_down_seconds: float = 30.0, interval: float = INTERVAL,
                 meter: CpuMeter | None = None) -> None:
        self.pools = pools
        self.scale_down_seconds = scale_down_seconds
        self.interval = interval
        self.meter = meter or CpuMeter()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self.meter.idle_cores()  # the first reading, so the first window has a base
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.tick(self.meter.idle_cores(), time.monotonic())
            except Exception:  # never the end of scaling for every version
                log.exception("autoscaling pass failed")

    def tick(self, idle_cores: float, now: float) -> None:
        """One judgement of every scalable pool (separate from the loop for tests)."""
        free = idle_cores
        for pool in self.pools():
            if pool.closed or not pool.scalable:
                continue
            calls, queued = pool.take_window()
            pressure = bool(pool.waiters) or (calls >= MIN_CALLS
                                              and queued >= QUEUED_SHARE * calls)
            if pressure and free >= FREE_CORES and pool.can_grow():
                pool.grow()
                log.info("%s: calls are waiting and %.1f cores are idle: a worker added "
                         "(%d now)", pool.label, free, len(pool.workers) + pool.starting)
                free -= 1.0  # one free core per new worker, across pools
            elif not pressure:
                pool.shrink_idle(now, self.scale_down_seconds)
