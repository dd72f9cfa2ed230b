"""What the server asks of a runtime: the interface the local pool and the Ray runtime share.

The server's executor (server/execution.py) and admin handlers speak only this interface;
``create_runtime`` picks the implementation from the ``runtime`` setting:

- ``local`` (runtime/pool.py): worker processes on this machine, forked from a template
  process (runtime/zygote.py), one pool per version.
- ``ray`` (runtime/rayserve.py): one Ray Serve deployment per version on a Ray cluster; each
  Serve replica hosts one champion worker process (runtime/rayreplica.py), so the fault
  contract is the local one, replica by replica.

Both answer the same way: the function's JSON output as bytes, or a ``ChampionError``:
``ModelError`` (500) when the function raised, ``WorkerCrashed`` (502) when the process
running it died during the call, ``ModelTimeout`` (504) when it ran past its timeout,
``Unavailable`` (503) when the version cannot be loaded or the runtime is unreachable.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from champion.errors import ModelError
from champion.runtime import protocol as p

if TYPE_CHECKING:
    from champion.runtime.pool import Limits, PoolSpec

VersionKey = tuple[str, int]

RUNTIMES = ("local", "ray")


def reply_or_raise(kind: int, reply: bytes) -> bytes:
    """A worker's answer (runtime/protocol.py) as the output's bytes, or ``ModelError``."""
    if kind == p.RESULT:
        return reply
    err = orjson.loads(reply)
    index = err.get("index")
    where = f" (batch row {index})" if index is not None else ""
    raise ModelError(f"{err['type']}: {err['message']}{where}", exception=err["type"])


class BaseRuntime(abc.ABC):
    """Runs versions described by a ``PoolSpec``; one instance per server process."""

    name: str = ""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work (on the server's event loop)."""

    @abc.abstractmethod
    async def call(self, spec: PoolSpec, body: bytes, timeout: float | None = None) -> bytes:
        """Run one CALL frame's body (runtime/protocol.py) on ``spec``'s version."""

    @abc.abstractmethod
    async def call_batched(self, spec: PoolSpec, inputs: list[Any]) -> list[Any]:
        """Outputs for ``inputs`` through the version's micro-batcher (runtime/batching.py)."""

    @abc.abstractmethod
    async def warm(self, spec: PoolSpec) -> None:
        """Load the version now and wait until it answers (a deploy's load check when the
        key's number is negative: provisional, re-filed by ``adopt``)."""

    @abc.abstractmethod
    def adopt(self, old: VersionKey, spec: PoolSpec) -> None:
        """Re-file what ``warm`` started under a provisional key as ``spec.key``."""

    @abc.abstractmethod
    async def stop(self, key: VersionKey) -> None:
        """Stop a version: its processes (or deployment) go away."""

    async def stop_deployment(self, name: str) -> None:
        for key in [k for k in self.versions() if k[0] == name]:
            await self.stop(key)

    @abc.abstractmethod
    def versions(self) -> set[VersionKey]:
        """The versions running here (or that this process started)."""

    def env_ids(self) -> set[str]:
        """The per-version environments in use (runtime/envs.py): never collected."""
        return set()

    @abc.abstractmethod
    def status(self) -> list[dict[str, Any]]:
        """One entry per version: ``version``, ``workers`` (ids), ``restarts``, ``calls`` …"""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop everything this process started."""


def create_runtime(kind: str, artifacts: Path, *, idle_timeout: float, fork_server: bool,
                   preload: tuple[str, ...], ray_address: str = "",
                   ray_replica_cpus: float = 1.0, limits: Limits | None = None,
                   scale_down_seconds: float = 30.0) -> BaseRuntime:
    """The runtime named by the ``runtime`` setting."""
    if kind == "ray":
        from champion.runtime.rayserve import RayRuntime

        return RayRuntime(artifacts, address=ray_address, replica_cpus=ray_replica_cpus)
    if kind != "local":
        raise ValueError(f"unknown runtime {kind!r}; known: {', '.join(RUNTIMES)}")
    from champion.runtime.pool import Runtime

    return Runtime(artifacts, idle_timeout=idle_timeout, fork_server=fork_server,
                   preload=preload, limits=limits, scale_down_seconds=scale_down_seconds)
