"""Worker processes on the server side: start, call, time out, replace, reap.

Each version that is called gets a pool of worker processes (``workers`` per deployment).
A worker runs its calls one at a time, but takes several at once (``depth``) so that it never
waits for the server between calls. A call that runs past its timeout kills its worker (504
for it and for the calls queued behind it) and a fresh one replaces it; a worker that dies
fails the calls in flight on it (502) and is replaced; other versions are not disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from champion.errors import (
    AnswerTooLarge,
    ChampionError,
    ModelError,
    ModelTimeout,
    OutOfMemory,
    Unavailable,
    WorkerCrashed,
)
from champion.runtime import protocol as p
from champion.runtime.autoscale import Autoscaler
from champion.runtime.base import BaseRuntime, VersionKey
from champion.runtime.batching import Batcher
from champion.runtime.forks import Zygote, ZygoteError, Zygotes

log = logging.getLogger("champion.runtime")


def _installed_modules(manifest: dict[str, Any]) -> list[str]:
    """The installed (not shipped) modules a version imports: the fork server preloads them."""
    local = {f.split("/", 1)[0].removesuffix(".py") for f in manifest.get("files", {})}
    return [m for m in manifest.get("modules", []) if m.split(".")[0] not in local]


def _value_pickles(manifest: dict[str, Any], artifacts: Path) -> list[Path]:
    digests = [d for d in manifest.get("values", {}).values() if isinstance(d, str)]
    return [artifacts / d[:2] / d[2:] for d in digests if len(d) == 64]


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^/\s'\":,()\[\]]+){2,}")


def without_paths(text: str) -> str:
    """``text`` with the server's file paths cut to their last part (``…/name``): a load
    failure reaches anonymous callers, who need not learn where the data directory is."""
    return _PATH.sub(lambda m: "…/" + m.group(0).rsplit("/", 1)[-1], text)


def label_of(key: VersionKey) -> str:
    """``name:number``; a deploy's check runs under a provisional negative number."""
    return f"{key[0]}:{key[1]}" if key[1] > 0 else f"{key[0]} (new version)"


@dataclass(frozen=True)
class Limits:
    """What every worker of a runtime may use: the largest answer it may send for one call
    (bytes; 0: no cap), its address space (MiB, RLIMIT_AS; 0: no limit) and how long it may
    poll for its next call before it sleeps (microseconds; 0: never)."""

    max_answer_bytes: int = 0
    memory_mb: int = 0
    poll_us: int = 0  # a worker's longest adaptive poll for its next call (worker.py)


@dataclass(frozen=True)
class PoolSpec:
    """What a pool runs and how."""

    key: VersionKey
    manifest: dict[str, Any]
    workers: int = 1
    max_workers: int | None = None  # > workers: autoscaled between the two
    timeout: float = 30.0
    idle_timeout: float | None = None
    load_timeout: float = 120.0
    depth: int = 16  # calls sent to one worker at once (it runs them one by one)
    nice: int = 0  # > 0: a background pool (shadow calls), its workers at lower CPU priority
    batch_max_size: int = 0  # > 1: micro-batching (runtime/batching.py)
    batch_max_wait_ms: float = 0.0
    # A version in its own environment (runtime/envs.py): that interpreter, with these
    # environment variables; None: the server's Python and environment.
    python: str | None = None
    environ: dict[str, str] | None = None
    env_id: str | None = None


class Worker:
    def __init__(self, pool: VersionPool) -> None:
        self.pool = pool
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self.next_id = 1
        self.dead = False
        self.pid = 0
        self.inflight = 0
        self._outbox: list[bytes] = []
        # The worker runs calls in the order sent, so only the oldest one is running: its
        # timeout clock runs; the next one's starts when it reaches the head.
        self._timeouts: dict[int, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.workdir: str | None = None  # where its version's files are written
        self.last_active = time.monotonic()  # its last call's end (autoscaling stops extras)

    async def start(self, artifacts: Path, load_timeout: float) -> None:
        spec = self.pool.spec
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        own = {"CHAMPION_DEPLOYMENT": spec.key[0], "CHAMPION_VERSION": str(max(spec.key[1], 0))}
        if self.pool.limits.memory_mb:  # the worker sets its own RLIMIT_AS (worker.py)
            own["CHAMPION_WORKER_MEMORY_MB"] = str(self.pool.limits.memory_mb)
        # a background pool's (shadows') calls are off the request path: no polling for them
        own["CHAMPION_WORKER_POLL_US"] = "0" if spec.nice else str(self.pool.limits.poll_us)
        try:
            zygote = self.pool.zygote
            if zygote is not None:
                try:
                    self.pid = await zygote.fork(child.fileno(), own, spec.nice,
                                                 _installed_modules(spec.manifest),
                                                 _value_pickles(spec.manifest, artifacts))
                except ZygoteError as exc:
                    log.warning("%s: %s; starting the worker as a new process",
                                self.pool.label, exc)
            if not self.pid:
                environ = {**(os.environ if spec.environ is None else spec.environ), **own}
                self.proc = await asyncio.create_subprocess_exec(
                    spec.python or sys.executable,
                    "-m",
                    "champion.runtime.worker",
                    str(child.fileno()),
                    pass_fds=(child.fileno(),),
                    stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                    env=environ,
                )
                self.pid = self.proc.pid
                if spec.nice:
                    with contextlib.suppress(OSError):
                        os.setpriority(os.PRIO_PROCESS, self.pid, spec.nice)
        finally:
            child.close()
        self.reader, self.writer = await asyncio.open_unix_connection(sock=parent)
        self._reader_task = asyncio.create_task(self._read_loop())
        load: dict[str, Any] = {"manifest": spec.manifest, "artifacts": str(artifacts)}
        if spec.manifest.get("files"):  # its files' directory: ours to remove when it exits
            self.workdir = tempfile.mkdtemp(prefix="champion-files-")
            load["workdir"] = self.workdir
        body = orjson.dumps(load)
        try:
            kind, reply = await asyncio.wait_for(self._send(p.LOAD, body), load_timeout)
        except TimeoutError:
            self.kill()
            raise Unavailable(
                f"{self.pool.label} did not load within {load_timeout:.0f} s"
            ) from None
        except WorkerCrashed:
            raise Unavailable(
                f"{self.pool.label}: its worker process exited while loading"
            ) from None
        if kind == p.FAILED:
            err = orjson.loads(reply)
            self.kill()
            log.warning("%s failed to load: %s: %s", self.pool.label, err["type"],
                        err["message"])
            raise Unavailable(
                f"{self.pool.label} failed to load: {err['type']}: "
                f"{without_paths(err['message'])}",
                cause=err["type"],
            )

    async def _read_loop(self) -> None:
        assert self.reader is not None
        try:
            while True:
                head = await self.reader.readexactly(p.HEADER.size)
                length, kind, msg_id = p.HEADER.unpack(head)
                cap = self.pool.limits.max_answer_bytes
                if cap and length - 5 > cap:  # refused unread: the worker stays
                    self._answer(msg_id, exc=AnswerTooLarge(
                        f"{self.pool.label} answered {length - 5:,} bytes, over the limit of "
                        f"{cap:,} bytes (max_answer_bytes): return less, or ask the "
                        "operator to raise --max-answer-bytes"))
                    await self._skip(length - 5)
                    continue
                body = await self.reader.readexactly(length - 5)
                self._answer(msg_id, (kind, body))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._on_exit()

    def _answer(self, msg_id: int, result: tuple[int, bytes] | None = None,
                exc: ChampionError | None = None) -> None:
        fut = self.pending.pop(msg_id, None)
        if self._timeouts.pop(msg_id, None) is not None:
            self._arm_timer()
        if fut is not None and not fut.done():
            if exc is not None:
                fut.set_exception(exc)
            else:
                assert result is not None
                fut.set_result(result)

    async def _skip(self, size: int) -> None:
        """Read and drop ``size`` bytes, a MiB at a time."""
        assert self.reader is not None
        while size > 0:
            chunk = await self.reader.read(min(size, 1 << 20))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", size)
            size -= len(chunk)

    def _remove_workdir(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _on_exit(self) -> None:
        self._remove_workdir()
        if not self.dead:
            self.dead = True
            self.pool.worker_exited(self)
        memory = self.pool.limits.memory_mb
        self._fail_pending(WorkerCrashed(
            f"{self.pool.label}: the worker process exited during the call"
            + (f" (it may have passed its memory limit of {memory} MiB)" if memory else "")))
        if self.writer is not None:
            self.writer.close()
        if self.proc is not None:
            self.pool.track(asyncio.ensure_future(self._reap()))

    async def _reap(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            code = await self.proc.wait()
            if code not in (0, -signal.SIGKILL, -signal.SIGTERM):
                log.warning("%s: worker %d exited with code %s", self.pool.label, self.pid, code)

    def _send(self, kind: int, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        if self.dead or self.writer is None:
            raise WorkerCrashed(f"{self.pool.label}: the worker process is gone")
        msg_id = self.next_id
        self.next_id += 1
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self.pending[msg_id] = fut
        # Frames sent in the same turn of the event loop leave in one write: a socket write
        # (and the wake-up of the worker it causes) is the dearest step of the hot path.
        self._outbox.append(p.frame(kind, msg_id, body))
        if len(self._outbox) == 1:
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        frames, self._outbox = self._outbox, []
        if frames and self.writer is not None and not self.dead:
            self.writer.write(b"".join(frames) if len(frames) > 1 else frames[0])

    def _fail_pending(self, exc: ChampionError) -> None:
        pending, self.pending = self.pending, {}
        self._timeouts.clear()
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)

    async def call(self, body: bytes, timeout: float, deadline: float | None = None,
                   kill_after: float | None = None) -> tuple[int, bytes]:
        """Run one call; its worker is replaced when it runs ``kill_after`` seconds (the
        version's own timeout; default ``timeout``), not sooner: a caller that asked for less
        time gets its 504 at its deadline, and cannot make workers restart by asking.

        ``deadline`` (the event loop's clock): the caller's answer is due then whatever
        happens, 504 when the call is running (it may still finish on the worker, its answer
        dropped), 503 when it is still waiting behind the calls ahead of it.
        """
        if deadline is None:
            fut = self._send(p.CALL, body)
        else:  # the worker skips it if it only gets to it after the caller has gone
            wall = time.time() + deadline - asyncio.get_running_loop().time()
            fut = self._send(p.CALL_BY, p.DEADLINE.pack(wall) + body)
        msg_id = self.next_id - 1
        self._timeouts[msg_id] = max(timeout, kill_after or 0.0)
        if len(self._timeouts) == 1:
            self._arm_timer()
        if deadline is None:
            return await fut
        due = asyncio.get_running_loop().call_at(deadline, self._due, msg_id, fut, timeout)
        try:
            return await fut
        finally:
            due.cancel()

    def _due(self, msg_id: int, fut: asyncio.Future[tuple[int, bytes]], timeout: float
             ) -> None:
        if fut.done():
            return
        if next(iter(self._timeouts), None) == msg_id:
            fut.set_exception(ModelTimeout(f"{self.pool.label} did not answer within "
                                           f"{timeout:.3g} s"))
        else:
            fut.set_exception(Unavailable(
                f"every worker of {self.pool.label} stayed busy for {timeout:.3g} s; "
                "add workers or slow down"))

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._timeouts and not self.dead:
            timeout = next(iter(self._timeouts.values()))
            self._timer = asyncio.get_running_loop().call_later(timeout, self._expire, timeout)

    def _expire(self, timeout: float) -> None:
        """A call ran past its timeout: the worker is replaced, and every call queued at it
        (which would wait behind the hung one) answers 504 too."""
        self._fail_pending(ModelTimeout(
            f"{self.pool.label} did not answer within {timeout:.3g} s; its worker was replaced"))
        self.kill()

    def kill(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        elif self.proc is None and self.pid and not self.dead:
            # forked by the fork server (which reaps it): its own session, so its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if not self.dead:
            self.dead = True
            self.pool.worker_exited(self)
        if self.writer is not None:
            self.writer.close()
        self._remove_workdir()


class VersionPool:
    """The worker processes of one version.

    Each worker takes up to ``spec.depth`` calls at once (it runs them in order); a call goes
    to the least-loaded worker, and waits in line when every worker is full.
    """

    def __init__(self, spec: PoolSpec, artifacts: Path, zygotes: Zygotes | None = None,
                 limits: Limits | None = None) -> None:
        self.spec = spec
        self.limits = limits or Limits()
        self.artifacts = artifacts
        self.zygotes = zygotes
        self.label = label_of(spec.key)
        self.workers: list[Worker] = []
        self.waiters: deque[asyncio.Future[Worker]] = deque()
        self.starting = 0
        self.load_error: ChampionError | None = None
        self.last_used = time.monotonic()
        self.closed = False
        self.restarts = 0
        self.calls = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self.batcher: Batcher | None = None
        # this autoscaling window's calls, and those that found no idle worker
        self._window_calls = 0
        self._window_queued = 0

    @property
    def zygote(self) -> Zygote | None:
        """The fork server this version's workers come from (None: plain processes)."""
        if self.zygotes is None:
            return None
        return self.zygotes.get(self.spec.python, self.spec.environ)

    def track(self, task: asyncio.Future[None]) -> None:
        """Keep a reference to a background task until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def inflight(self) -> int:
        return sum(w.inflight for w in self.workers)

    # -------------------------------------------------------------- capacity

    def _want_more(self) -> bool:
        return not self.closed and len(self.workers) + self.starting < self.spec.workers

    def fill(self) -> None:
        while self._want_more():
            self.starting += 1
            self.track(asyncio.ensure_future(self._start_one()))

    async def _start_one(self) -> None:
        worker = Worker(self)
        try:
            await worker.start(self.artifacts, self.spec.load_timeout)
        except ChampionError as exc:
            self.starting -= 1
            self.load_error = exc
            while self.waiters:
                fut = self.waiters.popleft()
                if not fut.done():
                    fut.set_exception(exc)
            return
        except Exception as exc:
            self.starting -= 1
            log.exception("%s: could not start a worker", self.label)
            self.load_error = Unavailable(f"{self.label}: could not start a worker: "
                                          f"{type(exc).__name__}: {without_paths(str(exc))}")
            return
        self.starting -= 1
        if self.closed:
            worker.kill()
            return
        self.load_error = None
        self.workers.append(worker)
        self._dispatch()

    # -------------------------------------------------------------- autoscaling

    @property
    def scalable(self) -> bool:
        """Whether the autoscaler may add workers above ``spec.workers``."""
        return self.spec.max_workers is not None and self.spec.max_workers > self.spec.workers

    def take_window(self) -> tuple[int, int]:
        """The calls since the last call of this, and how many of them queued."""
        out = (self._window_calls, self._window_queued)
        self._window_calls = self._window_queued = 0
        return out

    def can_grow(self) -> bool:
        return (self.scalable and not self.starting and self.load_error is None
                and len(self.workers) < (self.spec.max_workers or 0))

    def grow(self) -> None:
        """Start one more worker (the autoscaler's; ``fill`` keeps only the floor)."""
        self.starting += 1
        self.track(asyncio.ensure_future(self._start_one()))

    def shrink_idle(self, now: float, idle_for: float) -> None:
        """Stop the workers above ``spec.workers`` that had no call for ``idle_for`` s."""
        extra = len(self.workers) - self.spec.workers
        for worker in sorted(self.workers, key=lambda w: w.last_active):
            if extra <= 0:
                return
            if worker.inflight == 0 and now - worker.last_active > idle_for:
                self.retire(worker)
                extra -= 1

    def retire(self, worker: Worker) -> None:
        """Stop a worker on purpose (not counted as a restart)."""
        if worker in self.workers:
            self.workers.remove(worker)
        worker.kill()

    def worker_exited(self, worker: Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
            self.restarts += 1
        if not self.closed and self.waiters:
            self.fill()

    def _free_worker(self) -> Worker | None:
        # While more workers are on their way, queue here rather than behind a busy worker,
        # so that the newcomers take their share.
        depth = 1 if self.starting else self.spec.depth
        best: Worker | None = None
        for w in self.workers:
            if not w.dead and w.inflight < depth and (
                    best is None or w.inflight < best.inflight):
                best = w
        return best

    def _dispatch(self) -> None:
        """Hand free capacity to the callers waiting in line, first come first served."""
        while self.waiters:
            worker = self._free_worker()
            if worker is None:
                return
            fut = self.waiters.popleft()
            if not fut.done():
                worker.inflight += 1
                fut.set_result(worker)

    async def acquire(self) -> Worker:
        if not self.waiters:
            worker = self._free_worker()
            if worker is not None:
                worker.inflight += 1
                return worker
        if self.load_error is not None and not self.workers and not self.starting:
            # Retry loading once per caller burst; surface the error if it fails again.
            self.load_error = None
        fut: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        self.fill()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(fut.result())  # handed a worker just as we were cancelled
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(fut)

    def release(self, worker: Worker) -> None:
        worker.inflight -= 1
        worker.last_active = time.monotonic()
        if worker.dead:
            if not self.closed and self.waiters:
                self.fill()
            return
        self._dispatch()

    def resize(self, spec: PoolSpec) -> None:
        """Take a changed spec (worker count, timeouts) without disturbing running calls."""
        self.spec = spec
        for worker in [w for w in self.workers if w.inflight == 0]:
            if len(self.workers) <= max(spec.workers, spec.max_workers or 0):
                break
            self.retire(worker)
        self._dispatch()

    # -------------------------------------------------------------- calls

    async def call(self, body: bytes, timeout: float | None = None) -> tuple[int, bytes]:
        """One call, answered within ``timeout`` (the version's by default) from now:
        waiting for a worker (503 past it), in line at the worker (503) and running (504)."""
        self.last_used = time.monotonic()
        self.calls += 1
        self._window_calls += 1
        limit = timeout or self.spec.timeout
        deadline = asyncio.get_running_loop().time() + limit
        worker = None
        if not self.waiters:
            worker = self._free_worker()
            if worker is not None:
                if worker.inflight:
                    self._window_queued += 1  # behind another call at that worker
                worker.inflight += 1
        if worker is None:
            self._window_queued += 1
            loading = not self.workers
            try:
                worker = await asyncio.wait_for(self.acquire(), limit)
            except TimeoutError:
                if loading and not self.workers:  # the start goes on for the next calls
                    raise Unavailable(f"{self.label} is still starting its workers (over "
                                      f"{limit:.3g} s); try again shortly") from None
                raise Unavailable(f"every worker of {self.label} stayed busy for {limit:.3g} s; "
                                  "add workers or slow down") from None
        try:
            return await worker.call(body, limit, deadline, kill_after=self.spec.timeout)
        finally:
            self.last_used = time.monotonic()
            self.release(worker)

    async def close(self) -> None:
        self.closed = True
        for worker in list(self.workers):
            worker.kill()
        self.workers.clear()
        for fut in self.waiters:
            if not fut.done():
                fut.set_exception(Unavailable(f"{self.label} was stopped"))

    def failure(self, err: dict[str, Any], where: str = "") -> ChampionError:
        """The error of a call the model failed: its exception (500), or, when it ran out of
        memory under the workers' limit, 502 saying so."""
        if err.get("type") == "MemoryError" and self.limits.memory_mb:
            return OutOfMemory(f"{self.label} passed its worker's memory limit of "
                               f"{self.limits.memory_mb} MiB (--worker-memory-mb){where}",
                               exception="MemoryError")
        return ModelError(f"{err['type']}: {err['message']}{where}", exception=err["type"])

    def status(self) -> dict[str, Any]:
        return {
            "version": self.label,
            "workers": [w.pid for w in self.workers],
            "max_workers": self.spec.max_workers if self.scalable else None,
            "inflight": self.inflight,
            "batching": self.batcher.status() if self.batcher else None,
            "waiting": len(self.waiters),
            "restarts": self.restarts,
            "calls": self.calls,
            "idle_seconds": round(time.monotonic() - self.last_used, 1),
            "environment": self.spec.env_id,
        }


class Runtime(BaseRuntime):
    """All pools of one server process (the ``local`` runtime)."""

    name = "local"

    def __init__(self, artifacts: Path, idle_timeout: float = 600.0, *,
                 fork_server: bool = True, preload: tuple[str, ...] = (),
                 limits: Limits | None = None, scale_down_seconds: float = 30.0) -> None:
        self.artifacts = artifacts
        self.limits = limits or Limits()
        self.idle_timeout = idle_timeout
        # Workers are forked from a template process that has imported their libraries
        # (runtime/zygote.py): milliseconds to start, libraries' pages shared.
        self.zygotes = Zygotes(enabled=fork_server)
        self.preload = preload
        self._prewarm: asyncio.Task[None] | None = None
        self.pools: dict[VersionKey, VersionPool] = {}
        # Shadow calls run in pools of their own, at lower CPU priority, so that on a busy
        # machine the live answer's worker gets the processor first.
        self.background: dict[VersionKey, VersionPool] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # a pool came or changed: the reaper re-plans
        # versions with max_workers above workers grow while their calls queue (autoscale.py)
        self.autoscaler = Autoscaler(lambda: [p for _, _, p in self._all()],
                                     scale_down_seconds=scale_down_seconds)

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle())
        self.autoscaler.start()
        if self.preload and self._prewarm is None:
            self._prewarm = asyncio.create_task(self._start_fork_server())

    async def _start_fork_server(self) -> None:
        """Start the server interpreter's fork server with the common libraries imported,
        in the background: the first deploy then finds them there."""
        zygote = self.zygotes.get(None, None)
        if zygote is None:
            return
        try:  # what the early fork server imports on its own is not asked for again
            await zygote.preload(m for m in self.preload if m not in zygote.starting)
        except Exception as exc:  # it starts again, without them, on the first worker
            log.warning("the fork server could not preload %s: %s", self.preload, exc)

    def _all(self) -> list[tuple[dict[VersionKey, VersionPool], VersionKey, VersionPool]]:
        return [(d, k, p) for d in (self.pools, self.background) for k, p in d.items()]

    def versions(self) -> set[VersionKey]:
        return set(self.pools) | set(self.background)

    def env_ids(self) -> set[str]:
        """The environments whose workers run (or are about to): never collected."""
        return {p.spec.env_id for _, _, p in self._all() if p.spec.env_id and not p.closed}

    def pool(self, spec: PoolSpec) -> VersionPool:
        pools = self.background if spec.nice else self.pools
        pool = pools.get(spec.key)
        if pool is None or pool.closed:
            pool = pools[spec.key] = VersionPool(spec, self.artifacts, self.zygotes,
                                                 self.limits)
            self._changed.set()
        elif pool.spec is not spec and pool.spec != spec:
            pool.resize(spec)
            self._changed.set()
        return pool

    def adopt(self, old: VersionKey, spec: PoolSpec) -> None:
        """Re-file a pool started under a provisional key (a deploy's check) as ``spec.key``."""
        pool = self.pools.pop(old, None)
        if pool is None:
            return
        pool.spec = spec
        pool.label = label_of(spec.key)
        self.pools[spec.key] = pool
        self._changed.set()

    async def warm(self, spec: PoolSpec) -> None:
        """Start a version's workers now and wait for the first to load."""
        pool = self.pool(spec)
        worker = await pool.acquire()
        pool.release(worker)

    async def call_batched(self, spec: PoolSpec, inputs: list[Any]) -> list[Any]:
        """Outputs for ``inputs`` through the version's micro-batcher."""
        pool = self.pool(spec)
        pool.last_used = time.monotonic()
        if pool.batcher is None:
            pool.batcher = Batcher(pool)
        return await pool.batcher.submit(inputs)

    async def call(self, spec: PoolSpec, body: bytes, timeout: float | None = None) -> bytes:
        kind, reply = await self.pool(spec).call(body, timeout)
        if kind == p.RESULT:
            return reply
        err = orjson.loads(reply)
        index = err.get("index")
        where = f" (batch row {index})" if index is not None else ""
        raise self.pool(spec).failure(err, where)

    async def stop(self, key: VersionKey) -> None:
        for pools in (self.pools, self.background):
            pool = pools.pop(key, None)
            if pool is not None:
                await pool.close()

    async def _reap_idle(self) -> None:
        while True:
            shortest = min(
                [self.idle_timeout] + [p.spec.idle_timeout or 1e9 for _, _, p in self._all()]
            )
            # Sleep a quarter of the shortest idle timeout, but wake when a pool with a
            # shorter one appears, or it would wait out the longer interval first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(5.0, max(0.2, shortest / 4)))
            self._changed.clear()
            now = time.monotonic()
            for pools, key, pool in self._all():
                busy = pool.inflight
                limit = pool.spec.idle_timeout or self.idle_timeout
                if busy == 0 and not pool.waiters and now - pool.last_used > limit:
                    log.info("stopping idle workers of %s", pool.label)
                    if pools.get(key) is pool:
                        del pools[key]
                    await pool.close()

    async def close(self) -> None:
        if self._prewarm is not None:
            self._prewarm.cancel()
            self._prewarm = None
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        await self.autoscaler.close()
        for key in self.versions():
            await self.stop(key)
        self.zygotes.close()

    def status(self) -> list[dict[str, Any]]:
        return [{**pool.status(), "background": pools is self.background}
                for pools, _, pool in self._all()]
