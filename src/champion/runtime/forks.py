"""The server's side of the fork servers (``zygote.py``): one per interpreter and environment.

``Zygotes.get(python, environ)`` starts (or returns) the fork server for that interpreter;
``Zygote.fork`` asks it for a worker on a socket end, after ``preload`` of what the version
needs. Requests go one at a time over a blocking SOCK_SEQPACKET socket, in a thread (forks
are rare and take milliseconds). A fork server that dies is started again on the next fork;
a failure is the caller's cue to start the worker as a plain process instead.
"""

from __future__ import annotations

import asyncio
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
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [self.python, "-m", "champion.runtime.zygote", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                start_new_session=True, env=self.environ)
        finally:
            child.close()
        self.sock = parent
        self.preloaded = set()

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

    async def fork(self, fd: int, env: Mapping[str, str], nice: int = 0) -> int:
        """A worker process on socket ``fd``; its pid (it is the leader of its session)."""
        answer = await asyncio.to_thread(self._request, {"op": "fork", "env": dict(env),
                                                         "nice": nice}, fd)
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
            zygote = self._by_key[key] = Zygote(key[0], env)
        return zygote

    def close(self) -> None:
        for zygote in self._by_key.values():
            zygote.close()
        self._by_key.clear()
