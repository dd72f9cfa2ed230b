"""The reconcile loop's work: step every running experiment through its strategy.

For each running experiment that is due, build its report, keep a point of its timeline,
ask the strategy's ``step`` what to do, and do it through the normal transition path,
recorded with who (``controller``), when and why. Writes are fenced by the lease: a process
that lost it cannot act, and the state version makes a step that lost a race a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from champion.registry import Registry
from champion.registry.experiments import loaded
from champion.registry.reports import build_sync
from champion.store.leases import Fence, LeaseLost
from champion.strategies import SettingsError

log = logging.getLogger("champion.controller")

ACTOR = "controller"
# the most of its time a running experiment's timeline may spend building reports
REPORT_SHARE = 0.05


class Reconciler:
    def __init__(self, registry: Registry, runtime_status: Callable[[str], dict[str, int]],
                 *, timeline_interval: float = 10.0, seed: int | None = None) -> None:
        self.registry = registry
        self.store = registry.store
        self.runtime_status = runtime_status
        self.timeline_interval = timeline_interval
        self.rng = np.random.default_rng(seed)
        self._next_step: dict[str, float] = {}
        self._next_point: dict[str, float] = {}
        self._unreadable: set[str] = set()

    async def once(self, fence: Fence | None, now: float | None = None) -> list[dict[str, Any]]:
        """One pass over the running experiments; what was done (for logs and tests)."""
        rows = await asyncio.to_thread(self.store.list_experiments, None, "running")
        done: list[dict[str, Any]] = []
        live = {r["id"] for r in rows}
        for table in (self._next_step, self._next_point):
            for key in [k for k in table if k not in live]:
                del table[key]
        for row in rows:
            try:
                acted = await self._one(row, fence, time.time() if now is None else now)
            except LeaseLost:
                raise
            except Exception:
                log.exception("stepping experiment %s failed; trying again", row["id"])
                continue
            if acted is not None:
                done.append(acted)
        return done

    async def _one(self, row: dict[str, Any], fence: Fence | None, now: float
                   ) -> dict[str, Any] | None:
        try:
            strategy, settings, exp = loaded(row)
        except SettingsError as exc:
            if row["id"] not in self._unreadable:
                self._unreadable.add(row["id"])
                log.error("experiment %s cannot be stepped here: %s", row["id"], exc)
            return None
        cadence = strategy.cadence(settings, exp)
        step_due = cadence is not None and now >= self._next_step.get(row["id"], 0.0)
        point_due = now >= self._next_point.get(row["id"], 0.0)
        if not (step_due or point_due):
            return None
        started = time.perf_counter()
        report = await asyncio.to_thread(build_sync, self.store, row,
                                         self.runtime_status(row["id"]), now=now, rng=self.rng)
        took = time.perf_counter() - started
        if point_due:
            point = strategy.snapshot(report)
            if point is not None:
                await asyncio.to_thread(self.store.add_snapshot, row["id"], now, point,
                                        fence=fence)
            # A report that takes long (a shadow's at 100,000 pairs: ~3 s here) is not
            # rebuilt for the timeline more than REPORT_SHARE of the time: the server's
            # CPU is the live requests'. A strategy's steps keep their own cadence.
            self._next_point[row["id"]] = now + max(self.timeline_interval,
                                                    took / REPORT_SHARE)
        if not step_due or cadence is None:
            return None
        self._next_step[row["id"]] = now + cadence
        step = strategy.step(settings, dict(row["state"] or {}), exp, report, now)
        if step is None:
            return None
        applied = await self.registry.experiments.apply_step(row, step, ACTOR, fence)
        if not applied:
            log.info("step of %s not applied: it changed meanwhile", row["id"])
            return None
        if step.point is not None:
            await asyncio.to_thread(self.store.add_snapshot, row["id"], now, dict(step.point),
                                    fence=fence)
        if step.action is not None:
            log.warning("experiment %s: %s (%s)", row["id"], step.action, step.reason)
        elif step.event is not None:
            log.info("experiment %s: %s (%s)", row["id"], step.event, step.reason)
        return {"experiment": row["id"], "action": step.action, "event": step.event,
                "decision": step.decision, "reason": step.reason}
