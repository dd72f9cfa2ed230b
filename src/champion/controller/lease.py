"""The lease keeper: take or renew the store's lease for this process, every tick."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from champion.store import Store
from champion.store.leases import Fence

log = logging.getLogger("champion.controller")


def holder_id() -> str:
    """Who this process is, in the lease row: host, pid and a random part."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper:
    """Holds lease ``name`` while it can; ``fence`` is None when another process holds it.

    The term is ``term`` seconds on the store's clock; the keeper renews every call to
    :meth:`tick` (the controller's tick, well inside the term). A process that stops
    renewing (killed, stalled, cut off from the store) loses the lease when the term runs
    out and another process takes it over, with a new epoch that fences the old holder's
    writes.
    """

    def __init__(self, store: Store, name: str, term: float, holder: str | None = None) -> None:
        self.store = store
        self.name = name
        self.term = term
        self.holder = holder or holder_id()
        self.epoch: int | None = None

    @property
    def fence(self) -> Fence | None:
        return None if self.epoch is None else (self.name, self.holder, self.epoch)

    @property
    def held(self) -> bool:
        return self.epoch is not None

    async def tick(self) -> bool:
        """Take or renew the lease; whether this process holds it now."""
        try:
            epoch = await asyncio.to_thread(self.store.acquire_lease, self.name, self.holder,
                                            self.term)
        except Exception:
            log.warning("could not renew the %s lease; acting as a follower", self.name,
                        exc_info=True)
            epoch = None
        if epoch != self.epoch:
            if epoch is not None:
                log.info("this process now runs the background loops (%s lease, epoch %d)",
                         self.name, epoch)
            elif self.epoch is not None:
                log.warning("lost the %s lease (epoch %d)", self.name, self.epoch)
        self.epoch = epoch
        return epoch is not None

    async def release(self) -> None:
        if self.epoch is not None:
            try:
                await asyncio.to_thread(self.store.release_lease, self.name, self.holder)
            except Exception:
                log.warning("could not release the %s lease", self.name, exc_info=True)
            self.epoch = None
