"""One Ray Serve replica of a version: a champion worker process, hosted by a Ray actor.

The replica does not load the user's code into the Ray actor: it starts one champion worker
process (runtime/worker.py) through a local one-worker pool (runtime/pool.py) and forwards
calls to it. So the fault contract is the local runtime's, replica by replica: an exception
answers 500, a call past its timeout answers 504 and its worker is replaced, a worker that
dies answers 502 for the calls in flight and is replaced; the Ray actor (and its place in
Serve's routing) survives all three, and other versions' deployments are not touched.

Imported by Ray's worker processes (not by the server), so it does not import ray: Serve
wraps it with ``serve.deployment`` in runtime/rayserve.py.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import orjson

from champion.errors import ChampionError
from champion.runtime.pool import PoolSpec, VersionPool

#: The kind of an answer that carries a ChampionError (its ``to_dict()``): a runtime fault,
#: not the function's own exception (which comes back as protocol.ERROR).
FAULT = 99


class VersionReplica:
    """Serve calls ``call`` (several at once; the worker runs them one by one, in order)."""

    def __init__(self, spec: dict[str, Any], artifacts: str) -> None:
        # The worker dies with this actor (Serve stopping it, its node lost, a SIGKILL).
        os.environ["CHAMPION_DIE_WITH_PARENT"] = "1"
        if spec.get("environ") is not None:
            spec = {**spec, "environ": {**spec["environ"], "CHAMPION_DIE_WITH_PARENT": "1"}}
        spec = {**spec, "key": tuple(spec["key"]), "workers": 1}
        self.pool = VersionPool(PoolSpec(**spec), Path(artifacts), zygotes=None)

    async def call(self, body: bytes, timeout: float | None = None) -> tuple[int, bytes]:
        try:
            return await self.pool.call(body, timeout)
        except ChampionError as exc:
            return FAULT, orjson.dumps(exc.to_dict()["error"])

    async def ready(self) -> dict[str, Any]:
        """Load the version (its worker started) and say where it runs, or why it cannot."""
        try:
            worker = await self.pool.acquire()
        except ChampionError as exc:
            return {"fault": exc.to_dict()["error"]}
        self.pool.release(worker)
        return self.info()

    def info(self) -> dict[str, Any]:
        return {"actor_pid": os.getpid(), "workers": [w.pid for w in self.pool.workers],
                "restarts": self.pool.restarts, "calls": self.pool.calls}

    def __del__(self) -> None:
        # Serve calls this on a graceful stop (the version's deployment deleted): the
        # worker process goes with its replica, even in the middle of a hung call.
        with contextlib.suppress(Exception):
            self.pool.closed = True
            for worker in list(self.pool.workers):
                worker.kill()
