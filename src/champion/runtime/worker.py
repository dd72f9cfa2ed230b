"""The worker process: loads one version and answers calls, one at a time.

Started by the server as ``python -m champion.runtime.worker FD`` with one end of a socket
pair. Kept import-light: it must not import the server's dependencies.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import orjson

from champion.runtime import gcsettle
from champion.runtime import protocol as p

POLL_MIN = 20e-6  # a polling window shorter than this is none
# a yield that took longer than this gave the CPU to another process: polling then costs
# someone else's time, so the worker sleeps between calls for QUIET_S
CONTENDED_S = 50e-6
QUIET_S = 1.0
_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    """Make common data-science outputs JSON: numpy, pandas, sets, bytes."""
    for attr in ("tolist", "to_dict"):
        method = getattr(obj, attr, None)
        if callable(method):
            return method()
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"the function returned a {type(obj).__name__}, which is not JSON-serializable")


def encode(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTS)


class Connection:
    """Frames over the socket pair, read through a buffer (one recv brings every call the
    server has sent), each answer written as soon as it is ready.

    Adaptive polling (``poll_max``, seconds; 0: off): a worker that sleeps in ``recv`` is
    woken by the server's write, and on a virtual machine that wake-up costs ~50 us on each
    side (a socket pair's round trip measured 102 us with the answering process asleep, 27 us
    with it polling). So with its buffer empty the worker first polls the socket, yielding the
    CPU to anyone runnable, for up to ``window`` seconds. The window adapts as a hypervisor's
    halt-polling does: a call that arrived within ``poll_max`` of the last one doubles it (up
    to ``poll_max``); a longer wait halves it, and below ``POLL_MIN`` it is 0, so a worker
    whose calls come far apart spends nothing polling and one at a steady cadence never sleeps
    between calls. A yield that took over ``CONTENDED_S`` gave the CPU to another process: the
    worker then sleeps between calls for ``QUIET_S``, so on a busy machine it takes nobody's
    time.
    """

    def __init__(self, sock: socket.socket, poll_max: float = 0.0) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.poll_max = poll_max
        self.window = poll_max
        self.quiet_until = 0.0  # no polling before then: the CPU was wanted

    def _frame_ready(self) -> bool:
        if len(self.buf) < p.HEADER.size:
            return False
        length = p.LENGTH.unpack_from(self.buf)[0]
        return len(self.buf) >= 4 + length

    def _poll(self) -> bytes | None:
        """What arrives within ``window`` seconds (b"": the end), polling; None: nothing."""
        sock = self.sock
        end = time.perf_counter() + self.window
        sock.setblocking(False)
        try:
            while True:
                try:
                    return sock.recv(262144)
                except BlockingIOError:
                    now = time.perf_counter()
                    if now >= end:
                        return None
                    os.sched_yield()  # anyone runnable on this CPU goes first
                    if time.perf_counter() - now > CONTENDED_S:  # someone was: stop polling
                        self.window = 0.0
                        self.quiet_until = time.perf_counter() + QUIET_S
                        return None
        finally:
            sock.setblocking(True)

    def _fill(self) -> bool:
        """Read more into the buffer, polling first (see above); False: the socket ended."""
        started = time.perf_counter()
        if self.window > 0:
            chunk = self._poll()
            if chunk is not None:
                self.window = min(self.window * 2, self.poll_max)
                self.buf += chunk
                return bool(chunk)
        chunk = self.sock.recv(262144)
        if self.poll_max > 0 and started >= self.quiet_until:
            if time.perf_counter() - started <= self.poll_max:  # polling would have caught it
                self.window = min(max(self.window * 2, POLL_MIN), self.poll_max)
            else:
                self.window = self.window / 2 if self.window >= 2 * POLL_MIN else 0.0
        self.buf += chunk
        return bool(chunk)

    def recv(self) -> tuple[int, int, bytes] | None:
        while not self._frame_ready():
            if not self._fill():
                return None
        length, kind, msg_id = p.HEADER.unpack_from(self.buf)
        body = bytes(self.buf[p.HEADER.size : 4 + length])
        del self.buf[: 4 + length]
        return kind, msg_id, body

    def send(self, kind: int, msg_id: int, body: bytes) -> None:
        self.sock.sendall(p.frame(kind, msg_id, body))


def poll_from_env() -> float:
    """The polling limit the server gave this worker (CHAMPION_WORKER_POLL_US), in seconds."""
    try:
        return max(int(os.environ.get("CHAMPION_WORKER_POLL_US", "0")), 0) / 1e6
    except ValueError:
        return 0.0


def _error_body(exc: BaseException, index: int | None = None) -> bytes:
    return orjson.dumps(
        {"type": type(exc).__name__, "message": str(exc)[:2000], "index": index}
    )


def limit_memory() -> None:
    """The address-space limit the server asked for (CHAMPION_WORKER_MEMORY_MB), if any: past
    it an allocation fails (MemoryError), and the server answers 502 out_of_memory."""
    raw = os.environ.get("CHAMPION_WORKER_MEMORY_MB")
    if not raw:
        return
    import resource

    limit = int(raw) * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def serve(conn: Connection) -> None:
    limit_memory()
    msg = conn.recv()
    if msg is None or msg[0] != p.LOAD:
        return
    _, msg_id, body = msg
    request = orjson.loads(body)
    root = Path(request["artifacts"])

    def read_blob(digest: str) -> bytes:
        return (root / digest[:2] / digest[2:]).read_bytes()

    try:
        from champion.runtime import modelbit_shim
        from champion.runtime.loader import load_function

        # Code written for Modelbit (import modelbit; modelbit.load_value(...)) runs as is.
        sys.modules["modelbit"] = modelbit_shim

        workdir = request.get("workdir")
        fn = load_function(request["manifest"], read_blob,
                           Path(workdir) if workdir else None)
    except BaseException as exc:
        traceback.print_exc()
        conn.send(p.FAILED, msg_id, _error_body(exc))
        return
    gcsettle.settle()  # the version's objects are loaded: never walked by the collector
    conn.send(p.READY, msg_id, orjson.dumps({"pid": os.getpid()}))

    while True:
        msg = conn.recv()
        if msg is None:
            return  # the server went away
        kind, msg_id, body = msg
        if kind == p.CALL_BY:
            if time.time() > p.DEADLINE.unpack_from(body)[0]:  # its caller has gone
                conn.send(p.ERROR, msg_id, orjson.dumps({"type": p.EXPIRED, "message":
                                                         "the caller's deadline passed"}))
                continue
            body = body[p.DEADLINE.size:]
        call = orjson.loads(body)
        if "vector" in call:  # micro-batched: one call of the function with a list
            try:
                outputs = fn(call["vector"])
                if not isinstance(outputs, (list, tuple)) and hasattr(outputs, "tolist"):
                    outputs = outputs.tolist()
                if not isinstance(outputs, (list, tuple)) or len(outputs) != len(
                        call["vector"]):
                    raise TypeError(
                        "with micro-batching on, the function takes a list of inputs and "
                        f"returns a list of as many outputs; it returned {type(outputs).__name__}"
                        + (f" of {len(outputs)}" if isinstance(outputs, (list, tuple)) else ""))
                payload = encode(list(outputs))
            except Exception as exc:
                traceback.print_exc()
                conn.send(p.ERROR, msg_id, _error_body(exc))
                continue
            conn.send(p.RESULT, msg_id, payload)
            continue
        calls = call["calls"]
        ids = call.get("ids")
        index = 0
        try:
            outputs = []
            if "frame" in call:  # DataFrame mode: every row in one call
                from champion.runtime.frames import call_frame

                outputs = call_frame(fn, [args[0] for args, _ in calls], call["frame"])
            else:
                for args, kwargs in calls:
                    outputs.append(fn(*args, **kwargs))
                    index += 1
            if ids is None:
                payload = encode(outputs[0])
            else:
                payload = encode([[i, y] for i, y in zip(ids, outputs, strict=True)])
        except Exception as exc:
            print(f"champion worker {os.getpid()}: call failed:", file=sys.stderr)
            traceback.print_exc()
            row = index if ids is not None and "frame" not in call else None
            conn.send(p.ERROR, msg_id, _error_body(exc, row))
            continue
        conn.send(p.RESULT, msg_id, payload)


def _die_with_parent() -> None:
    """With CHAMPION_DIE_WITH_PARENT=1 (set by a Ray replica, runtime/rayreplica.py): the
    kernel kills this worker when the process that started it dies, even mid-call (a hung
    function never reads the socket's end). Linux only; elsewhere the socket's end does."""
    if os.environ.get("CHAMPION_DIE_WITH_PARENT") != "1" or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the call above
        os._exit(1)


def main() -> None:
    _die_with_parent()
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    try:
        serve(Connection(sock, poll_from_env()))
    finally:
        sock.close()


if __name__ == "__main__":
    main()
