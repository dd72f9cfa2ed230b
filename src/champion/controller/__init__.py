"""The background loops, in one place.

* every process: follow the registry (another process's deploys, alias moves, experiment
  changes) and the hot state of running experiments, every ``poll_interval``;
* one process at a time, the holder of the store's ``controller`` lease: step every running
  experiment (``reconcile``), keep their timelines, and delete old events (retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from champion.controller.lease import LeaseKeeper
from champion.controller.reconcile import Reconciler
from champion.registry import Registry
from champion.settings import Config
from champion.store.leases import LeaseLost

log = logging.getLogger("champion.controller")

LEASE = "controller"


class Controller:
    def __init__(self, registry: Registry, config: Config,
                 runtime_status: Callable[[str], dict[str, int]],
                 on_registry_change: Callable[[], Awaitable[None]] | None = None) -> None:
        self.registry = registry
        self.store = registry.store
        self.config = config
        self.lease = LeaseKeeper(self.store, LEASE, config.lease_seconds)
        self.reconciler = Reconciler(registry, runtime_status,
                                     timeline_interval=config.timeline_interval)
        self.on_registry_change = on_registry_change
        self._tasks: list[asyncio.Task[None]] = []
        self._next_retention = 0.0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll()), asyncio.create_task(self._lead())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.lease.release()

    async def _poll(self) -> None:
        """Every process: see changes made by the others sharing the store."""
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                if await self.registry.refresh() and self.on_registry_change is not None:
                    await self.on_registry_change()
                await self.registry.refresh_states()
            except Exception:
                log.exception("registry refresh failed")

    async def _lead(self) -> None:
        """The lease holder's loop; the others keep trying to take the lease over."""
        while True:
            started = time.monotonic()
            try:
                if await self.lease.tick():
                    await self.tick()
            except LeaseLost:
                log.warning("lease lost in the middle of a step; another process acts now")
                self.lease.epoch = None
            except Exception:
                log.exception("the controller loop failed; trying again")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(self.config.controller_interval - elapsed, 0.05))

    async def tick(self) -> None:
        """One round of the leader's work (public for tests)."""
        await self.reconciler.once(self.lease.fence)
        if self.config.log_retention_days > 0 and time.time() >= self._next_retention:
            await self._retention()
            self._next_retention = time.time() + self.config.retention_interval

    async def _retention(self) -> None:
        """Delete events older than the retention period, in bounded batches."""
        cutoff = time.time() - self.config.log_retention_days * 86400
        try:
            while self.lease.held:
                deleted = await asyncio.to_thread(self.store.delete_events_before, cutoff)
                if deleted < 1000:
                    break
                await asyncio.sleep(0.05)  # let the request path's writes in between
        except Exception:
            log.exception("log retention failed")
