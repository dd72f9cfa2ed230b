"""The Ray runtime: each version a Ray Serve deployment on a Ray cluster.

One Serve application per version (``champion~STORE~NAME~MANIFEST``, one deployment in it),
created on the version's deploy (or its first call, on a server that has not seen it yet),
with ``num_replicas`` from the deployment's ``workers`` setting, or Serve's autoscaling
between ``workers`` and ``max_workers`` replicas; deleted with the deployment. Each replica
hosts one champion worker process (runtime/rayreplica.py), so answers and faults are the
local runtime's. The server calls replicas through one cached ``DeploymentHandle`` per
version; Serve picks the replica (power of two choices) and queues when all are busy.

Why one deployment per version, not versions multiplexed in one deployment per environment:
docs/scaling.md ("The execution tier").

Several server processes (replicas behind a load balancer) share the cluster and the
applications: the names derive from the artifact location they share, so a version deployed
through one is served by the same Serve deployment through every other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from champion.errors import (
    ALL_ERRORS,
    ChampionError,
    ModelTimeout,
    Unavailable,
    Unreachable,
    WorkerCrashed,
)
from champion.runtime.base import BaseRuntime, VersionKey, reply_or_raise
from champion.runtime.batching import Batcher
from champion.runtime.pool import PoolSpec, label_of

log = logging.getLogger("champion.runtime")

_BY_TYPE = {cls.type_name: cls for cls in ALL_ERRORS}
SEP = "~"  # not allowed in deployment names, so NAME~NUMBER parses back


def ray_missing() -> str | None:
    """Why the Ray runtime cannot run here (ray[serve] not installed), or None."""
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as exc:
        return (f"the ray runtime needs Ray Serve ({exc}); install it with "
                "pip install 'champion[ray]'")
    return None


def check_address(address: str, timeout: float = 3.0) -> str | None:
    """Why the Ray cluster at ``address`` (``host:port`` or ``ray://host:port``) cannot be
    reached, or None. ``auto`` and empty (a local instance) are not checked here."""
    if address in ("", "auto", "local"):
        return None
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379)"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}"


def _fault(reply: bytes) -> ChampionError:
    """Rebuild the runtime fault a replica answered with (rayreplica.FAULT)."""
    err = orjson.loads(reply)
    cls = _BY_TYPE.get(str(err.pop("type", "")), ChampionError)
    message = str(err.pop("message", ""))
    err.pop("request_id", None)
    return cls(message, **err)


@dataclasses.dataclass
class RayVersion:
    """One version's Serve application, as this server process sees it."""

    runtime: RayRuntime
    spec: PoolSpec
    app: str
    handle: Any = None
    ready: asyncio.Future[None] | None = None
    reuse: bool = True  # an application already running under its name is taken as is
    calls: int = 0
    last_used: float = dataclasses.field(default_factory=time.monotonic)
    batcher: Batcher | None = None
    loaded: dict[str, Any] = dataclasses.field(default_factory=dict)  # the first replica's

    @property
    def label(self) -> str:
        return label_of(self.spec.key)

    async def call(self, body: bytes, timeout: float | None = None) -> tuple[int, bytes]:
        """A CALL frame on one of the replicas: (protocol kind, body), or a ChampionError."""
        ready = self.ready
        if ready is None or not ready.done() or ready.exception() is not None:
            await self.runtime.ensure(self)
        self.calls += 1
        self.last_used = time.monotonic()
        limit = timeout or self.spec.timeout
        response = self.handle.call.remote(body, limit)
        # The replica enforces the timeout (504, its worker replaced); this bound only
        # covers a replica that never answers at all (a first load, a wedged node).
        try:
            kind, reply = await asyncio.wait_for(
                _await(response), limit + self.spec.load_timeout + 5)
        except TimeoutError:
            response.cancel()
            raise ModelTimeout(f"{self.label} did not answer within {limit:g} s "
                               "(no answer from its Ray replica)") from None
        except ChampionError:
            raise
        except Exception as exc:
            err = _ray_error(self.label, exc)
            if isinstance(err, Unreachable) or not isinstance(
                    err, (WorkerCrashed, ModelTimeout, Unavailable)):
                # The application may be gone (deleted elsewhere, the cluster restarted):
                # the next call looks it up again and recreates it if need be.
                self.ready = None
            raise err from None
        if kind == FAULT:
            raise _fault(reply)
        return int(kind), reply


# Ray Serve's calls made from this process's threads, one at a time: building a
# deployment's config registers a module with cloudpickle for pickling by value and
# unregisters it after, in a set shared by the process, so two deploys in two threads
# failed one of them with "ValueError: <module 'ray.serve._private.request_router'> is not
# registered for pickle by value" (seen in CI, two runs in a row).
_SERVE_CALLS = threading.Lock()


async def _await(response: Any) -> Any:
    return await response


def _ray_error(label: str, exc: Exception) -> ChampionError:
    """A Ray or Serve exception, as the error the caller sees."""
    name = type(exc).__name__
    # Ray's own text (node addresses, paths, the cluster's internals) stays in the server
    # log: the answer reaches anonymous callers and names only the kind of failure.
    log.warning("%s: Ray call failed: %s: %s", label, name,
                (str(exc).strip().splitlines() or [""])[0][:300])
    if name in ("ActorDiedError", "RayActorError", "ActorUnavailableError",
                "NodeDiedError", "WorkerCrashedError", "OwnerDiedError"):
        return WorkerCrashed(f"{label}: its Ray replica died during the call ({name})")
    if name in ("BackPressureError",):
        return Unavailable(f"{label}: every Ray replica is busy and its queue is full")
    if name in ("RequestCancelledError", "TaskCancelledError"):
        return ModelTimeout(f"{label}: the call was cancelled")
    if name in ("RaySystemError", "GetTimeoutError", "RpcError", "RayServeException"):
        return Unreachable(f"{label}: the Ray cluster did not answer ({name})")
    return ChampionError(f"{label}: the Ray replica failed ({name})")


FAULT = 99  # rayreplica.FAULT, without importing the replica module here

# The calls a replica takes at once: it queues them for its worker itself, in order, each
# with its own deadline (runtime/pool.py), so Serve's router need not hold any back. At the
# worker's depth (16) the calls past it waited in the DeploymentHandle's router, whose
# retries with backoff served 48-107 req/s at c=64 against 410-423 at c=8 (Ray Serve alone:
# 280-330), and a call after such a burst waited 2.7-7 s behind the router's backlog.
REPLICA_QUEUE = 1024


class RayRuntime(BaseRuntime):
    """Versions as Ray Serve deployments; connects to Ray on first use (or at start)."""

    name = "ray"

    def __init__(self, artifacts: Path, *, address: str = "", namespace: str = "champion",
                 replica_cpus: float = 1.0) -> None:
        self.artifacts = artifacts
        self.address = address
        self.namespace = namespace
        self.replica_cpus = replica_cpus
        # Applications are named for the artifact location: replicas of one store share it.
        self.store_id = hashlib.sha256(str(artifacts).encode()).hexdigest()[:8]
        self.versions_: dict[VersionKey, RayVersion] = {}
        self._connected: asyncio.Future[None] | None = None
        self._started_local = False
        self._deleting: set[asyncio.Future[None]] = set()

    # -------------------------------------------------------------- connection

    def start(self) -> None:
        # Connect in the background at once: the first call then finds Ray up.
        self._connect_task = asyncio.ensure_future(self._connect_once())
        self._connect_task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _connect_once(self) -> None:
        if self._connected is None:
            self._connected = asyncio.ensure_future(asyncio.to_thread(self._connect))
        await asyncio.shield(self._connected)

    def _connect(self) -> None:
        import ray
        from ray import serve

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"namespace": self.namespace, "log_to_driver": True,
                                      "logging_level": logging.WARNING,
                                      "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:  # a local instance for this server: loopback, no dashboard
                kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1")
                self._started_local = True
            try:
                ray.init(**kwargs)
            except Exception as exc:
                where = self.address or "a new local instance"
                first = (str(exc).splitlines() or [""])[0]
                raise Unreachable(f"cannot connect to Ray at {where}: "
                                  f"{type(exc).__name__}: {first}") from None
        # Serve on the cluster; its HTTP proxy stays off (champion is the HTTP front).
        serve.start(proxy_location="Disabled")
        logging.getLogger("ray.serve").setLevel(logging.WARNING)  # no line per deploy

    # -------------------------------------------------------------- versions

    def app_name(self, spec: PoolSpec) -> str:
        """``champion~STORE~NAME~MANIFEST``: the same on every server process of one store,
        and the same for a deploy's load check and the version it becomes."""
        digest = hashlib.sha256(orjson.dumps(spec.manifest, option=orjson.OPT_SORT_KEYS))
        return SEP.join(("champion", self.store_id, spec.key[0], digest.hexdigest()[:16]))

    def _version(self, spec: PoolSpec) -> RayVersion:
        v = self.versions_.get(spec.key)
        if v is None:
            v = self.versions_[spec.key] = RayVersion(self, spec, self.app_name(spec))
        elif v.spec is not spec and _replicas(v.spec) != _replicas(spec):
            v.spec = spec
            v.ready, v.reuse = None, False  # redeployed with the new replica count
        else:
            v.spec = spec
        return v

    async def ensure(self, v: RayVersion) -> None:
        """The version's Serve application exists and one replica has loaded it."""
        if v.ready is None or (v.ready.done() and v.ready.exception() is not None):
            v.ready = asyncio.ensure_future(self._deploy(v))
        await asyncio.shield(v.ready)

    async def _deploy(self, v: RayVersion) -> None:
        await self._connect_once()
        try:
            v.handle = await asyncio.to_thread(self._run_app, v.spec, v.app, v.reuse)
            v.reuse = True
            info = await asyncio.wait_for(_await(v.handle.ready.remote()),
                                          v.spec.load_timeout)
        except TimeoutError:
            raise Unavailable(f"{v.label} did not load within "
                              f"{v.spec.load_timeout:.0f} s on Ray") from None
        except ChampionError:
            raise
        except Exception as exc:
            raise _ray_error(v.label, exc) from None
        if "fault" in info:  # the replica could not load the version
            raise _fault(orjson.dumps(info["fault"]))
        v.loaded = dict(info)

    def _run_app(self, spec: PoolSpec, app: str, reuse: bool) -> Any:
        from ray import serve

        from champion.runtime.rayreplica import VersionReplica

        with _SERVE_CALLS:
            return self._run_app_locked(serve, VersionReplica, spec, app, reuse)

    def _run_app_locked(self, serve: Any, replica: type, spec: PoolSpec, app: str,
                        reuse: bool) -> Any:
        status = serve.status().applications.get(app) if reuse else None
        if status is not None and str(status.status).endswith("RUNNING"):
            return serve.get_app_handle(app)  # made by another server process
        low, high = _replicas(spec)
        options: dict[str, Any] = {
            "name": "version",
            "max_ongoing_requests": max(spec.depth, REPLICA_QUEUE),
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "health_check_period_s": 2.0,
            # a deleted version's replicas go at once (their calls have answered by then)
            "graceful_shutdown_wait_loop_s": 0.2,
            "graceful_shutdown_timeout_s": 1.0,
            # no access-log line per call in the replicas' logs (champion keeps its own)
            "logging_config": {"enable_access_log": False, "log_level": "WARNING"},
        }
        if high > low:
            options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high,
                                             "target_ongoing_requests": 2}
        else:
            options["num_replicas"] = low
        deployment = serve.deployment(**options)(replica)
        fields = {k: v for k, v in dataclasses.asdict(spec).items() if k != "nice"}
        return serve.run(deployment.bind(fields, str(self.artifacts)), name=app,
                         route_prefix=None)

    # -------------------------------------------------------------- the interface

    async def call(self, spec: PoolSpec, body: bytes, timeout: float | None = None) -> bytes:
        kind, reply = await self._version(_foreground(spec)).call(body, timeout)
        return reply_or_raise(kind, reply)

    async def call_batched(self, spec: PoolSpec, inputs: list[Any]) -> list[Any]:
        v = self._version(_foreground(spec))
        if v.batcher is None:
            v.batcher = Batcher(v)
        return await v.batcher.submit(inputs)

    async def warm(self, spec: PoolSpec) -> None:
        await self.ensure(self._version(_foreground(spec)))

    def adopt(self, old: VersionKey, spec: PoolSpec) -> None:
        """The deploy's check ran under a provisional key; its application is named for
        the manifest, so it is the version's own: only the key changes."""
        checked = self.versions_.pop(old, None)
        if checked is None:
            return
        v = self._version(spec)
        if v.app == checked.app and v.ready is None:
            v.handle, v.ready = checked.handle, checked.ready

    async def stop(self, key: VersionKey) -> None:
        v = self.versions_.pop(key, None)
        if v is not None and not any(o.app == v.app for o in self.versions_.values()):
            await self._delete_apps([v.app])

    async def stop_deployment(self, name: str) -> None:
        """Delete every version's application of ``name``, including those another
        server process created: in the background (Serve drains the replicas), so that the
        deployment's deletion answers at once."""
        for key in [k for k in self.versions_ if k[0] == name]:
            self.versions_.pop(key, None)
        task = asyncio.ensure_future(self._delete_deployment(name))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    async def _delete_deployment(self, name: str) -> None:
        try:
            await self._connect_once()
            prefix = SEP.join(("champion", self.store_id, name, ""))
            apps = await asyncio.to_thread(self._apps_with, prefix)
        except Exception as exc:
            log.warning("could not list the Ray Serve applications of %s: %s", name, exc)
            return
        await self._delete_apps(apps)

    def _apps_with(self, prefix: str) -> list[str]:
        from ray import serve

        with _SERVE_CALLS:
            return [a for a in serve.status().applications if a.startswith(prefix)]

    async def _delete_apps(self, apps: list[str]) -> None:
        if not apps or self._connected is None:
            return
        try:
            await self._connect_once()
            await asyncio.to_thread(self._delete, apps)
        except Exception as exc:
            log.warning("could not delete the Ray Serve application(s) %s: %s", apps, exc)

    @staticmethod
    def _delete(apps: list[str]) -> None:
        from ray import serve

        for app in apps:
            with _SERVE_CALLS:
                serve.delete(app, _blocking=True)

    def versions(self) -> set[VersionKey]:
        return set(self.versions_)

    def status(self) -> list[dict[str, Any]]:
        return [{"version": v.label, "runtime": "ray", "application": v.app,
                 # pids on the replica that loaded it first (on a cluster: on its node)
                 "workers": v.loaded.get("workers", []),
                 "replica_pid": v.loaded.get("actor_pid"),
                 "replicas": list(_replicas(v.spec)), "inflight": 0,
                 "batching": v.batcher.status() if v.batcher else None, "waiting": 0,
                 "restarts": 0, "calls": v.calls,
                 "idle_seconds": round(time.monotonic() - v.last_used, 1),
                 "environment": v.spec.env_id, "background": False}
                for v in self.versions_.values()]

    async def replica_info(self, spec: PoolSpec) -> dict[str, Any]:
        """Where one replica of the version runs (actor and worker process ids)."""
        v = self._version(_foreground(spec))
        await self.ensure(v)
        return dict(await _await(v.handle.info.remote()))

    async def close(self) -> None:
        """Forget the handles; the applications stay (shared with other server processes)
        unless this process started its own local Ray instance."""
        self.versions_.clear()
        if self._deleting:  # deletions under way finish before the server exits
            await asyncio.wait(list(self._deleting), timeout=10)
        if self._connected is None or not self._connected.done():
            return
        if self._started_local:
            await asyncio.to_thread(_shutdown)


def _shutdown() -> None:
    import ray
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()


def _foreground(spec: PoolSpec) -> PoolSpec:
    """Shadow calls (``nice`` > 0) use the version's own deployment: Ray places replicas
    and has no lower-priority class; the shadow queue in the server still bounds them."""
    return dataclasses.replace(spec, nice=0) if spec.nice else spec


def _replicas(spec: PoolSpec) -> tuple[int, int]:
    low = max(1, spec.workers)
    return low, max(low, spec.max_workers or low)



