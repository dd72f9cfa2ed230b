"""Adaptive micro-batching: concurrent single-row calls merged into one call of the function.

Opt-in per deployment (``batch_max_size`` > 1). The function then takes a list of inputs and
returns a list of outputs. While a worker is free, a request goes out at once (alone, or with
whatever queued with it); while every worker is busy, requests queue and leave together, up
to ``batch_max_size``, as soon as one frees: batches grow with load, latency stays low when
idle. ``batch_max_wait_ms`` > 0 additionally holds a lone request that long for company.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from champion.errors import InvalidInput, ModelError
from champion.runtime import protocol as p

# an input nested deeper than orjson writes (it reads 1024 levels, writes 254)
TOO_DEEP = "the data is nested too deeply (over 250 levels)"

if TYPE_CHECKING:
    from champion.runtime.pool import PoolSpec


class Calls(Protocol):
    """What a batcher sends its batches to: a local pool, or a Ray deployment's handle."""

    spec: PoolSpec

    async def call(self, body: bytes, timeout: float | None = None) -> tuple[int, bytes]: ...


class _Request:
    """One caller's inputs (a single request's one, or a batch request's rows): they may
    leave in several micro-batches, and are answered together, with one future."""

    __slots__ = ("future", "outputs", "pending")

    def __init__(self, n: int, future: asyncio.Future[list[Any]]) -> None:
        self.outputs: list[Any] = [None] * n
        self.pending = n
        self.future = future


# what waits in the queue: inputs [first, end) of a request, and their JSON, b"x,..."
# (written at submit, spliced into the batch's body as it is)
Chunk = tuple[_Request, int, int, bytes]


class Batcher:
    def __init__(self, pool: Calls) -> None:
        self.pool = pool
        self.queue: deque[Chunk] = deque()
        self.queued = 0  # inputs waiting, over every queued slice
        self.inflight = 0
        self.batches = 0
        self.items = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def slots(self) -> int:
        return max(1, self.pool.spec.workers) + 1  # one extra keeps a worker fed

    async def submit(self, inputs: list[Any]) -> list[Any]:
        """Outputs for ``inputs`` (in order), computed in whatever batches they join.

        InvalidInput when the inputs cannot be written as JSON for the worker (nested
        deeper than orjson writes): refused here, before they share a batch with others."""
        if not inputs:
            return []
        size = max(1, self.pool.spec.batch_max_size)
        # More inputs than a batch takes leave in chunks of the batch size, each written
        # once here: a chunk is never split, so no input is ever written twice.
        chunks = [inputs] if len(inputs) <= size else [
            inputs[i:i + size] for i in range(0, len(inputs), size)]
        try:  # written as the worker gets them: two levels more than each input
            encoded = [orjson.dumps({"vector": chunk})[11:-2] for chunk in chunks]
        except orjson.JSONEncodeError:
            raise InvalidInput(TOO_DEEP) from None
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        request = _Request(len(inputs), future)
        first = 0
        for chunk, data in zip(chunks, encoded, strict=True):
            self.queue.append((request, first, first + len(chunk), data))
            first += len(chunk)
        self.queued += len(inputs)
        self._kick()
        return await future

    def _kick(self) -> None:
        spec = self.pool.spec
        while self.queued and self.inflight < self.slots:
            full = self.queued >= spec.batch_max_size
            if not full and spec.batch_max_wait_ms > 0 and self.inflight == 0:
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(
                        spec.batch_max_wait_ms / 1000, self._flush_timer)
                return
            self._send(self._take(spec.batch_max_size))

    def _take(self, size: int) -> list[Chunk]:
        """Whole chunks from the head of the queue, up to ``size`` inputs (the first always,
        so a batch is never empty; none is ever split)."""
        batch: list[Chunk] = []
        room = size
        while self.queue:
            n = self.queue[0][2] - self.queue[0][1]
            if batch and n > room:
                break
            batch.append(self.queue.popleft())
            room -= n
        self.queued -= size - room
        return batch

    def _flush_timer(self) -> None:
        self._timer = None
        if self.queued and self.inflight < self.slots:
            self._send(self._take(self.pool.spec.batch_max_size))
        self._kick()

    def _send(self, batch: list[Chunk]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.inflight += 1
        self.batches += 1
        self.items += sum(end - first for _, first, end, _ in batch)
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _body(batch: list[Chunk]) -> bytes:
        """``{"vector": [x, ...]}``, spliced from the chunks as written at submit."""
        return b'{"vector":[' + b",".join(data for *_, data in batch) + b"]}"

    async def _run(self, batch: list[Chunk]) -> None:
        try:
            kind, reply = await self.pool.call(self._body(batch))
            size = sum(end - first for _, first, end, _ in batch)
            if kind != p.RESULT:
                err = orjson.loads(reply)
                where = f" (in a micro-batch of {size})"
                failure = getattr(self.pool, "failure", None)  # a local pool's: memory too
                if failure is not None:
                    raise failure(err, where)
                raise ModelError(f"{err['type']}: {err['message']}{where}",
                                 exception=err["type"])
            outputs = orjson.loads(reply)
            if not isinstance(outputs, list) or len(outputs) != size:
                raise ModelError(f"the function returned {_count(outputs)} for a micro-batch "
                                 f"of {size} inputs: with micro-batching on it takes a list "
                                 "of inputs and returns a list of as many outputs")
            at = 0
            for request, first, end, _ in batch:
                n = end - first
                request.outputs[first:end] = outputs[at:at + n]
                at += n
                request.pending -= n
                if request.pending == 0 and not request.future.done():
                    request.future.set_result(request.outputs)
        except BaseException as exc:
            for request, *_ in batch:
                if not request.future.done():
                    request.future.set_exception(
                        exc if isinstance(exc, Exception)
                        else ModelError("the micro-batch was cancelled"))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.inflight -= 1
            self._kick()

    def status(self) -> dict[str, Any]:
        return {"batches": self.batches, "mean_batch": round(self.items / self.batches, 2)
                if self.batches else None, "queued": self.queued}


def _count(outputs: Any) -> str:
    return f"{len(outputs)} outputs" if isinstance(outputs, list) else (
        f"a {type(outputs).__name__}, not a list")
