"""The server's side of the fork servers (``zygote.py``): one per interpreter and environment.

``Zygotes.get(python, environ)`` starts (or returns) the fork server for that interpreter;
``Zygote.fork`` asks it for a worker on a socket end, after ``preload`` of what the version
needs. Requests go one at a time over a blocking SOCK_SEQPACKET socket, in a thread (forks
are rare and take milliseconds). A fork server that dies is started again on the next fork;
a failure is the caller's cue to start the worker as a plain process instead.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("champion.runtime")


class ZygoteError(Exception):
    """The fork server could not give a worker (the caller starts one the slow way)."""


class Zygote:
    def __init__(self, python: str, environ: Mapping[str, str]) -> None:
        self.python = python
        self.environ = dict(environ)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.preloaded: set[str] = set()
        self.starting: list[str] = []  # what it imports on its own while no request waits
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _start(self, preload: Iterable[str] = ()) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        modules = list(dict.fromkeys(preload))  # in the order given: the likeliest first
        argv = [self.python, "-m", "champion.runtime.zygote", str(child.fileno())]
        if modules:
            argv += ["--preload", ",".join(modules)]
        try:
            self.proc = subprocess.Popen(argv, pass_fds=(child.fileno(),),
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=self.environ)
        finally:
            child.close()
        self.sock = parent
        # not yet preloaded: a version's preload still names them, so that its worker is
        # forked after they are in even if the start's list is still being imported (the
        # fork server skips what it has already imported)
        self.preloaded = set()
        self.starting = modules

    def start(self, preload: Iterable[str] = ()) -> None:
        """Start the process now, importing ``preload`` (in order) whenever no request
        waits."""
        with self._lock:
            if not self.alive:
                self.close()
                self._start(preload)

    def _request(self, message: dict[str, Any], fd: int | None = None) -> dict[str, Any]:
        with self._lock:
            if not self.alive:
                self.close()
                self._start()
            assert self.sock is not None
            data = json.dumps(message).encode()
            try:
                if fd is None:
                    self.sock.sendall(data)
                else:
                    socket.send_fds(self.sock, [data], [fd])
                reply = self.sock.recv(1 << 16)
            except OSError as exc:
                self.close()
                raise ZygoteError(f"the fork server failed: {exc}") from None
            if not reply:
                self.close()
                raise ZygoteError("the fork server exited")
            answer: dict[str, Any] = json.loads(reply)
            if not answer.get("ok"):
                raise ZygoteError(str(answer.get("error")))
            return answer

    async def preload(self, modules: Iterable[str], pickles: Iterable[Path] = ()) -> None:
        """Import these modules (and those the pickles refer to) in the fork server, so
        that every worker forked after shares them."""
        wanted = sorted(set(modules) - self.preloaded)
        files = [str(p) for p in pickles]
        if not wanted and not files:
            return
        await asyncio.to_thread(self._request, {"op": "preload", "modules": wanted,
                                                "pickles": files})
        self.preloaded.update(wanted)

    async def fork(self, fd: int, env: Mapping[str, str], nice: int = 0,
                   modules: Iterable[str] = (), pickles: Iterable[Path] = ()) -> int:
        """A worker process on socket ``fd``, forked after ``modules`` (and those the
        pickles refer to) are imported; its pid (it is the leader of its session). One
        request: a fork server still importing its start's list takes it before the next
        module of that list."""
        wanted = sorted(set(modules) - self.preloaded)
        message = {"op": "fork", "env": dict(env), "nice": nice, "modules": wanted,
                   "pickles": [str(p) for p in pickles]}
        answer = await asyncio.to_thread(self._request, message, fd)
        self.preloaded.update(wanted)
        return int(answer["pid"])

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.proc.wait(5)
            self.proc = None


_early: Zygote | None = None


def start_early(preload: Iterable[str]) -> None:
    """Start the server interpreter's fork server now, importing ``preload`` at once.

    ``champion serve`` calls this before it imports its own modules and opens the store, so
    that the libraries' imports (scikit-learn alone takes about a second) run beside the
    server's start instead of after it: a deploy just after ``/readyz`` then finds them
    imported. The first ``Zygotes.get`` for the same interpreter and environment adopts it;
    one that is never adopted is stopped when the process exits."""
    global _early
    if _early is None:
        _early = Zygote(sys.executable, os.environ)
        _early.start(preload)
        atexit.register(_close_early)


def _close_early() -> None:
    global _early
    if _early is not None:
        _early.close()
        _early = None


def _adopt_early(python: str, environ: dict[str, str]) -> Zygote | None:
    global _early
    zygote, _early = _early, None
    if zygote is None:
        return None
    if zygote.python == python and zygote.environ == environ:
        return zygote
    _early = zygote  # another interpreter or environment: left for its own key (or exit)
    return None


class Zygotes:
    """Every fork server of one server process, by interpreter and environment."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._by_key: dict[tuple[str, tuple[tuple[str, str], ...]], Zygote] = {}

    def get(self, python: str | None, environ: Mapping[str, str] | None) -> Zygote | None:
        if not self.enabled:
            return None
        env = dict(os.environ if environ is None else environ)
        key = (python or sys.executable, tuple(sorted(env.items())))
        zygote = self._by_key.get(key)
        if zygote is None:
            zygote = _adopt_early(key[0], env) or Zygote(key[0], env)
            self._by_key[key] = zygote
        return zygote

    def close(self) -> None:
        for zygote in self._by_key.values():
            zygote.close()
        self._by_key.clear()
