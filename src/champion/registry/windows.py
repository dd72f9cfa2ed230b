"""Per-arm request windows folded in once, for strategies judged every second (canary).

A canary's guardrails compare the arms over the current step: requests, server errors and a
latency percentile per interval. Read afresh at every check, that is every row of the step
(the count grows with the step) and the newest latency samples (20,000 per arm, read at
random through the index): 60-200 ms of the server's CPU each second on a busy endpoint,
and on an endpoint busy enough that 20,000 samples span less than ``min_intervals``
intervals, a latency guardrail that could never judge.

Here a window keeps what it has read. Rows older than ``GRACE_S`` are taken as all in the
log (the request log lands within the writer's flush interval, 0.1 s by default) and folded
into counts once; an interval that ends before that horizon is closed: its percentile is
computed once from its own rows (up to ``cap`` of them, a uniform sample beyond) and its
samples dropped. Each check then reads only the rows of the last ``GRACE_S`` seconds and
whatever arrived since the last check.

A row that reaches the log more than ``GRACE_S`` late (a writer stalled on a locked store) is
missed by the window it belongs to: the counts are then a little low, never doubled.
"""

from __future__ import annotations

import math
import random
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from champion.latency import bin_of, quantiles

GRACE_S = 2.0
MAX_WINDOWS = 64  # windows kept per process (an experiment has one or two at a time)

Rows = Iterable[list[tuple[str, float, int, float]]]


@dataclass(frozen=True)
class LatencySpec:
    """How the latency of a window is summarised: intervals of ``width`` seconds from the
    window's start, the ``q`` quantile of each interval with at least ``min_samples``
    answered requests, from at most ``cap`` samples per interval."""

    width: float
    q: float
    min_samples: int = 1
    cap: int = 20_000


@dataclass
class _Arm:
    requests: int = 0
    errors: int = 0
    bins: dict[int, int] = field(default_factory=dict)  # latency histogram, answered ones
    closed: dict[int, float] = field(default_factory=dict)  # interval -> its quantile
    open: dict[int, array[float]] = field(default_factory=dict)  # interval -> samples
    seen: dict[int, int] = field(default_factory=dict)  # interval -> answered requests


class _Fold:
    """Adds rows to per-arm state (the window's, or a copy for the unsettled tail)."""

    def __init__(self, arms: dict[str, _Arm], since: float, spec: LatencySpec | None,
                 rng: random.Random) -> None:
        self.arms, self.since, self.spec, self.rng = arms, since, spec, rng

    def add(self, rows: Iterable[tuple[str, float, int, float]]) -> None:
        arms, spec, since, rng = self.arms, self.spec, self.since, self.rng
        width = spec.width if spec else 0.0
        cap = spec.cap if spec else 0
        for arm_name, ts, status, ms in rows:
            arm = arms.get(arm_name)
            if arm is None:
                arm = arms[arm_name] = _Arm()
            arm.requests += 1
            if status >= 500:
                arm.errors += 1
                continue
            if spec is None:
                continue
            b = bin_of(ms)
            arm.bins[b] = arm.bins.get(b, 0) + 1
            i = int((ts - since) // width)
            n = arm.seen.get(i, 0) + 1
            arm.seen[i] = n
            samples = arm.open.get(i)
            if samples is None:
                samples = arm.open[i] = array("d")
            if n <= cap:
                samples.append(ms)
            else:  # a uniform sample of the interval (reservoir)
                j = rng.randrange(n)
                if j < cap:
                    samples[j] = ms


def _copy(arms: Mapping[str, _Arm]) -> dict[str, _Arm]:
    return {name: _Arm(a.requests, a.errors, dict(a.bins), dict(a.closed),
                       {i: array("d", v) for i, v in a.open.items()}, dict(a.seen))
            for name, a in arms.items()}


def _quantile(values: array[float], q: float) -> float:
    return float(np.quantile(np.frombuffer(values, dtype=float), q, method="linear"))


class _Window:
    def __init__(self, since: float, until: float | None, spec: LatencySpec | None) -> None:
        self.since, self.until, self.spec = since, until, spec
        self.upto = since  # rows with ts < upto are folded into arms
        self.arms: dict[str, _Arm] = {}
        self.rng = random.Random(0)
        self.lock = threading.Lock()

    def _close(self, horizon: float) -> None:
        """Close the intervals that end at or before ``horizon``."""
        spec = self.spec
        if spec is None:
            return
        for arm in self.arms.values():
            for i in [i for i in arm.open if self.since + (i + 1) * spec.width <= horizon]:
                samples = arm.open.pop(i)
                if len(samples) >= spec.min_samples and i >= 0:
                    arm.closed[i] = _quantile(samples, spec.q)

    def read(self, fetch: Callable[[float, float | None], Rows], now: float) -> dict[str, Any]:
        with self.lock:
            horizon = now - GRACE_S
            if self.until is not None:
                horizon = min(horizon, self.until)
            if horizon > self.upto:
                fold = _Fold(self.arms, self.since, self.spec, self.rng)
                for rows in fetch(self.upto, horizon):
                    fold.add(rows)
                self.upto = horizon
                self._close(horizon)
            arms = self.arms
            if self.until is None or self.upto < self.until:
                # the unsettled tail: read for this answer only, never folded
                arms = _copy(self.arms)
                fold = _Fold(arms, self.since, self.spec, self.rng)
                for rows in fetch(self.upto, self.until):
                    fold.add(rows)
            return {name: self._summary(a) for name, a in arms.items()}

    def _summary(self, arm: _Arm) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": arm.requests, "errors": arm.errors}
        spec = self.spec
        if spec is not None:
            intervals = dict(arm.closed)
            for i, samples in arm.open.items():
                if len(samples) >= spec.min_samples and i >= 0:
                    intervals[i] = _quantile(samples, spec.q)
            (overall,) = quantiles(arm.bins, (spec.q,))
            out["latency"] = {"intervals": dict(sorted(intervals.items())),
                              "overall": overall, "answered": sum(arm.bins.values())}
        return out


class WindowCache:
    """Windows by (experiment, since, until, latency spec), least recently used dropped."""

    def __init__(self, size: int = MAX_WINDOWS) -> None:
        self.size = size
        self._windows: OrderedDict[tuple[Any, ...], _Window] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, key: Any, experiment: str, since: float, until: float | None,
             spec: LatencySpec | None, fetch: Callable[[float, float | None], Rows],
             now: float | None = None) -> dict[str, Any]:
        """Per arm: ``requests``, ``errors`` (5xx) and, with ``spec``, ``latency``:
        ``intervals`` (index from ``since`` -> quantile), ``overall`` (the quantile over
        the window, from a histogram: within about 6 %) and ``answered``."""
        if not math.isfinite(since):
            raise ValueError("a window needs a finite start")
        full = (key, experiment, since, until, spec)
        with self._lock:
            window = self._windows.get(full)
            if window is None:
                window = self._windows[full] = _Window(since, until, spec)
            self._windows.move_to_end(full)
            while len(self._windows) > self.size:
                self._windows.popitem(last=False)
        return window.read(fetch, time.time() if now is None else now)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


WINDOWS = WindowCache()
