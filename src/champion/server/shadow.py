"""Shadow calls: mirrored off the request path through a bounded queue.

The live answer never waits for a shadow. ``submit`` is a non-blocking put; when the queue is
full the call is dropped and counted. A few consumer tasks run the shadow versions and queue
their answers for the shadow log, under the live request's id. A shadow that fails or hangs
only produces a logged error for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from champion.errors import ChampionError

if TYPE_CHECKING:
    from champion.events.writer import EventWriter
    from champion.runtime.pool import PoolSpec, Runtime

log = logging.getLogger("champion.shadow")


@dataclass(frozen=True)
class ShadowJob:
    experiment: str
    arm: str
    variant: str
    request_id: str
    spec: PoolSpec
    payload: bytes
    timeout: float


class ShadowRunner:
    def __init__(self, runtime: Runtime, writer: EventWriter, *, queue_size: int = 1000,
                 concurrency: int = 4, payload_cap: int = 65536) -> None:
        self.runtime = runtime
        self.writer = writer
        self.queue: asyncio.Queue[ShadowJob] = asyncio.Queue(maxsize=queue_size)
        self.concurrency = concurrency
        self.payload_cap = payload_cap
        self.dropped: dict[str, int] = defaultdict(int)
        self.sent: dict[str, int] = defaultdict(int)
        self.failed: dict[str, int] = defaultdict(int)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._consume())
                           for _ in range(self.concurrency)]

    def submit(self, job: ShadowJob) -> bool:
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped[job.experiment] += 1
            return False
        return True

    async def _consume(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._run(job)
            except Exception:  # observers never break anything
                log.exception("shadow call for %s failed", job.request_id)
            finally:
                self.queue.task_done()

    async def _run(self, job: ShadowJob) -> None:
        started = time.perf_counter()
        output: str | None = None
        error: str | None = None
        status = 200
        try:
            out = await self.runtime.call(job.spec, job.payload, job.timeout)
            output = out[: self.payload_cap].decode("utf-8", "replace")
        except ChampionError as exc:
            status, error = exc.status_code, f"{exc.type_name}: {exc.message}"
            self.failed[job.experiment] += 1
        self.sent[job.experiment] += 1
        self.writer.record({
            "request_id": job.request_id,
            "arm": job.arm,
            "experiment": job.experiment,
            "ts": time.time(),
            "variant": job.variant,
            "status": status,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "output": output,
            "error": error,
        })

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def status(self, experiment: str) -> dict[str, int]:
        return {"mirrored": self.sent.get(experiment, 0),
                "dropped": self.dropped.get(experiment, 0),
                "failed": self.failed.get(experiment, 0),
                "queued": self.queue.qsize()}
