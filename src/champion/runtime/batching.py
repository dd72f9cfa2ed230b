"""Adaptive micro-batching: concurrent single-row calls merged into one call of the function.

Opt-in per deployment (``batch_max_size`` > 1). The function then takes a list of inputs and
returns a list of outputs. While a worker is free, a request goes out at once (alone, or with
whatever queued with it); while every worker is busy, requests queue and leave together, up
to ``batch_max_size``, as soon as one frees: batches grow with load, latency stays low when
idle. ``batch_max_wait_ms`` > 0 additionally holds a lone request that long for company.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from champion.errors import ModelError
from champion.runtime import protocol as p

if TYPE_CHECKING:
    from champion.runtime.pool import PoolSpec


class Calls(Protocol):
    """What a batcher sends its batches to: a local pool, or a Ray deployment's handle."""

    spec: PoolSpec

    async def call(self, body: bytes, timeout: float | None = None) -> tuple[int, bytes]: ...


class Batcher:
    def __init__(self, pool: Calls) -> None:
        self.pool = pool
        self.queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self.inflight = 0
        self.batches = 0
        self.items = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def slots(self) -> int:
        return max(1, self.pool.spec.workers) + 1  # one extra keeps a worker fed

    async def submit(self, inputs: list[Any]) -> list[Any]:
        """Outputs for ``inputs`` (in order), computed in whatever batches they join."""
        loop = asyncio.get_running_loop()
        futures = []
        for x in inputs:
            fut: asyncio.Future[Any] = loop.create_future()
            self.queue.append((x, fut))
            futures.append(fut)
        self._kick()
        return list(await asyncio.gather(*futures))

    def _kick(self) -> None:
        spec = self.pool.spec
        while self.queue and self.inflight < self.slots:
            full = len(self.queue) >= spec.batch_max_size
            if not full and spec.batch_max_wait_ms > 0 and self.inflight == 0:
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(
                        spec.batch_max_wait_ms / 1000, self._flush_timer)
                return
            self._send(self.queue[: spec.batch_max_size])
            del self.queue[: spec.batch_max_size]

    def _flush_timer(self) -> None:
        self._timer = None
        if self.queue and self.inflight < self.slots:
            size = self.pool.spec.batch_max_size
            self._send(self.queue[:size])
            del self.queue[:size]
        self._kick()

    def _send(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.inflight += 1
        self.batches += 1
        self.items += len(batch)
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            body = orjson.dumps({"vector": [x for x, _ in batch]})
            kind, reply = await self.pool.call(body)
            if kind != p.RESULT:
                err = orjson.loads(reply)
                raise ModelError(f"{err['type']}: {err['message']} (in a micro-batch of "
                                 f"{len(batch)})", exception=err["type"])
            outputs = orjson.loads(reply)
            for (_, fut), y in zip(batch, outputs, strict=True):
                if not fut.done():
                    fut.set_result(y)
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else
                                      ModelError("the micro-batch was cancelled"))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.inflight -= 1
            self._kick()

    def status(self) -> dict[str, Any]:
        return {"batches": self.batches, "mean_batch": round(self.items / self.batches, 2)
                if self.batches else None, "queued": len(self.queue)}
