"""The request log's writer: events are queued on the event loop and written in batches.

``record`` costs a list append. A background task writes what has queued at least every
``flush_ms`` (or sooner when a batch fills). ``close`` writes what is left; on a hard kill at
most the events of the last interval are lost.

Where the write runs is measured, not assumed. PostgreSQL's client waits on the network
with the GIL released, so a thread suits it. SQLite's module takes the GIL back after every
row's step, and a writer thread doing that fought the event loop for it, costing ~25 % of
single-row throughput; on SQLite the writer runs on the loop itself in small chunks
(a few milliseconds each), yielding between them. It never waits there for the write lock:
when another writer (a feedback write, another process) holds it, the chunk is written from
a thread instead, which waits, while the loop goes on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from champion.store import Store, StoreBusy

log = logging.getLogger("champion.events")

MAX_BATCH = 5000
INLINE_BATCH = 250
CHECKPOINT_S = 2.0
MAX_BUFFER = 200_000


class EventWriter:
    def __init__(self, store: Store, flush_ms: int = 100,
                 insert: Callable[[list[dict[str, Any]]], None] | None = None,
                 inline: bool | None = None) -> None:
        self.store = store
        self.inline = store.is_sqlite if inline is None else inline
        self.insert: Callable[..., None] = insert or store.insert_requests
        self.interval = max(flush_ms, 1) / 1000.0
        self.buffer: list[dict[str, Any]] = []
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self.busy = 0  # chunks written from a thread because the database was locked
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._retries = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def record(self, event: dict[str, Any]) -> None:
        if len(self.buffer) >= MAX_BUFFER:
            self.dropped += 1  # the store is far behind: shed rather than exhaust memory
            return
        self.buffer.append(event)
        if len(self.buffer) >= MAX_BATCH:
            self._wake.set()

    async def _run(self) -> None:
        last_checkpoint = time.monotonic()
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()
            if self.inline and time.monotonic() - last_checkpoint > CHECKPOINT_S:
                last_checkpoint = time.monotonic()
                try:  # off the loop: a checkpoint copies pages and syncs the file
                    await asyncio.to_thread(self.store.checkpoint)
                except Exception:
                    log.warning("write-ahead log checkpoint failed", exc_info=True)

    async def flush(self) -> None:
        while self.buffer:
            size = INLINE_BATCH if self.inline else MAX_BATCH
            batch, self.buffer = self.buffer[:size], self.buffer[size:]
            try:
                if self.inline:
                    try:
                        self.insert(batch, wait=False)
                    except StoreBusy:
                        self.busy += 1
                        await asyncio.to_thread(self.insert, batch)
                    await asyncio.sleep(0)  # let requests in between chunks
                else:
                    await asyncio.to_thread(self.insert, batch)
                self.written += len(batch)
            except Exception:
                self.failures += 1
                self._retries += 1
                if self._retries > 3:
                    log.exception("dropping %d request events the store refused", len(batch))
                    self.dropped += len(batch)
                    self._retries = 0
                    continue
                log.exception("could not write %d request events; retrying", len(batch))
                self.buffer[:0] = batch
                await asyncio.sleep(self.interval)
                if self._closing and self._retries > 1:
                    return
            else:
                self._retries = 0

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    def status(self) -> dict[str, Any]:
        return {
            "queued": len(self.buffer),
            "written": self.written,
            "dropped": self.dropped,
            "write_failures": self.failures,
            "written_while_locked": self.busy,
            "time": time.time(),
        }
