"""Shadow calls: mirrored off the request path through a bounded queue.

The live answer never waits for a shadow. ``submit`` is a non-blocking put; when the queue is
full the call is dropped and counted. A few consumer tasks run the shadow versions and queue
their answers for the shadow log, under the live request's id. A shadow that fails or hangs
only produces a logged error for itself.

The copies waiting in a queue leave together: one worker message carries up to
``max_batch`` of them (latency does not matter off the request path; the per-call cost of
the server's loop and of the worker's wake-up does). A consumer that finds fewer waiting
lingers ``linger`` seconds for more, so that at low concurrency too, where copies arrive one
at a time, the shadow's worker wakes a few dozen times a second rather than once per request.
Each copy's recorded latency is its share of that call. A batch that fails is run again copy
by copy, so that one bad input fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from champion.errors import ChampionError

if TYPE_CHECKING:
    from champion.events.writer import EventWriter
    from champion.registry import Target
    from champion.server.shapes import Call

log = logging.getLogger("champion.shadow")


@dataclass(frozen=True)
class ShadowJob:
    experiment: str
    arm: str
    target: Target
    request_id: str
    calls: list[Call]
    ids: list[Any] | None


Execute = Callable[..., Awaitable[bytes]]


class ShadowRunner:
    def __init__(self, execute: Execute, writer: EventWriter, *, queue_size: int = 1000,
                 concurrency: int = 2, payload_cap: int = 65536, max_batch: int = 32,
                 linger: float = 0.02) -> None:
        self.max_batch = max_batch
        self.linger = linger
        self.execute = execute
        self.writer = writer
        # One bounded queue and its consumers per shadow variant: a slow shadow backs up
        # (and drops) its own calls only.
        self.queue_size = queue_size
        self.queues: dict[tuple[str, str], asyncio.Queue[ShadowJob]] = {}
        self.concurrency = concurrency
        self.payload_cap = payload_cap
        self.dropped: dict[str, int] = defaultdict(int)
        self.sent: dict[str, int] = defaultdict(int)
        self.failed: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)  # worker calls (a batch is one)
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, job: ShadowJob) -> bool:
        key = (job.experiment, job.arm)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = asyncio.Queue(maxsize=self.queue_size)
            self._tasks += [asyncio.create_task(self._consume(queue))
                            for _ in range(self.concurrency)]
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped[job.experiment] += 1
            return False
        return True

    async def _consume(self, queue: asyncio.Queue[ShadowJob]) -> None:
        while True:
            jobs = [await queue.get()]
            if self.linger > 0 and queue.qsize() < self.max_batch - 1:
                await asyncio.sleep(self.linger)
            while len(jobs) < self.max_batch and not queue.empty():
                jobs.append(queue.get_nowait())
            try:
                if len(jobs) == 1 or not await self._run_batch(jobs):
                    for job in jobs:
                        await self._run(job)
            except Exception:  # observers never break anything
                log.exception("shadow calls for %s failed", jobs[0].request_id)
            finally:
                for _ in jobs:
                    queue.task_done()

    async def _run_batch(self, jobs: list[ShadowJob]) -> bool:
        """Every copy in one worker call; False (nothing recorded) when it failed."""
        target = jobs[0].target
        if any(j.target is not target for j in jobs):
            return False
        calls = [c for j in jobs for c in j.calls]
        started = time.perf_counter()
        self.calls[jobs[0].experiment] += 1
        try:
            out = await self.execute(target, calls, list(range(len(calls))), background=True)
        except ChampionError:
            return False
        share = (time.perf_counter() - started) * 1000 / len(calls)
        rows = orjson.loads(out)
        at = 0
        for job in jobs:
            values = [y for _, y in rows[at:at + len(job.calls)]]
            at += len(job.calls)
            answer = values[0] if job.ids is None else [
                [i, y] for i, y in zip(job.ids, values, strict=True)]
            self._record(job, 200, share * len(job.calls),
                         orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS)
                         [: self.payload_cap].decode("utf-8", "replace"), None)
        return True

    def _record(self, job: ShadowJob, status: int, latency_ms: float, output: str | None,
                error: str | None) -> None:
        self.sent[job.experiment] += 1
        self.writer.record({
            "request_id": job.request_id,
            "arm": job.arm,
            "experiment": job.experiment,
            "ts": time.time(),
            "variant": job.target.label,
            "status": status,
            "latency_ms": latency_ms,
            "output": output,
            "error": error,
        })

    async def _run(self, job: ShadowJob) -> None:
        started = time.perf_counter()
        output: str | None = None
        error: str | None = None
        status = 200
        self.calls[job.experiment] += 1
        try:
            out = await self.execute(job.target, job.calls, job.ids, background=True)
            output = out[: self.payload_cap].decode("utf-8", "replace")
        except ChampionError as exc:
            status, error = exc.status_code, f"{exc.type_name}: {exc.message}"
            self.failed[job.experiment] += 1
        self._record(job, status, (time.perf_counter() - started) * 1000, output, error)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def status(self, experiment: str) -> dict[str, int]:
        return {"mirrored": self.sent.get(experiment, 0),
                "worker_calls": self.calls.get(experiment, 0),
                "dropped": self.dropped.get(experiment, 0),
                "failed": self.failed.get(experiment, 0),
                "queued": sum(q.qsize() for (e, _), q in self.queues.items()
                              if e == experiment)}
