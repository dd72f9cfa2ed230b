"""The fork server: worker processes forked from a template that has imported the libraries.

Starting a worker with ``python -m champion.runtime.worker`` costs an interpreter start plus
the imports of the version's libraries (numpy, scikit-learn, pandas ...: a second or more,
~200 MiB resident each). A zygote is one long-lived process per interpreter and environment
that imports those libraries once; each worker is then ``os.fork()`` of it: it starts in
milliseconds and shares the libraries' pages with every other worker, copy on write.

The zygote is single-threaded and never runs user functions itself: it imports installed
modules a version names (``preload``) and forks. Each child becomes an ordinary worker
(``champion.runtime.worker.serve``) on the socket the server passed it, in its own session.
The zygote reaps its children; the server sees a worker die as the end of its socket, as
before, and kills one by its pid.

Control protocol (a SOCK_SEQPACKET socket pair: one JSON message each way per request; a
fork request carries the worker's socket as SCM_RIGHTS ancillary data)::

    {"op": "preload", "modules": ["numpy", "sklearn.linear_model"]}  -> {"ok": true, "failed": []}
    {"op": "fork", "env": {...}, "nice": 0}  + fd  -> {"ok": true, "pid": 1234}

``python -m champion.runtime.zygote FD --preload numpy,sklearn`` imports those first.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from champion.runtime import gcsettle


def _reap(_signum: int, _frame: Any) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child(fd: int, env: dict[str, str], nice: int, control: socket.socket) -> None:
    """In the forked child: become a worker on ``fd``, never return."""
    code = 0
    try:
        control.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.environ.update(env)
        if nice:
            os.nice(nice)
        from champion.runtime import worker

        sock = socket.socket(fileno=fd)
        try:
            worker.serve(worker.Connection(sock, worker.poll_from_env()))
        finally:
            sock.close()
    except BaseException:  # the worker's own errors are reported through its socket
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def preload(modules: list[str], pickles: Sequence[str] = ()) -> list[str]:
    """Import what a version needs: the installed modules it names and those its pickled
    values refer to (read with pickletools, never unpickled here); the ones that failed."""
    from champion.runtime.pickles import modules_in_pickle

    names = list(modules)
    for path in pickles:
        try:
            with open(path, "rb") as f:
                names += sorted(modules_in_pickle(f.read()))
        except Exception:  # a pickle that cannot be read: its worker will say so
            continue
    failed = []
    for name in dict.fromkeys(names):
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # a module that cannot be imported here: its worker will say
            failed.append(name)
    return failed


def serve(control: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 1 << 20, 1)
        except InterruptedError:
            continue
        if not message:
            return  # the server went away
        request = json.loads(message)
        reply: dict[str, Any]
        if request["op"] == "preload":
            reply = {"ok": True, "failed": preload(list(request.get("modules", [])),
                                                   list(request.get("pickles", [])))}
        elif request["op"] == "fork" and fds:
            gcsettle.settle()  # what it imported stays shared with the children, untouched
            pid = os.fork()
            if pid == 0:
                _child(fds[0], dict(request.get("env", {})), int(request.get("nice", 0)),
                       control)
            os.close(fds[0])
            reply = {"ok": True, "pid": pid}
        else:
            for fd in fds:
                os.close(fd)
            reply = {"ok": False, "error": f"bad request {request.get('op')!r}"}
        control.sendall(json.dumps(reply).encode())


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    try:
        # ``--preload a,b``: import these before the first request is read (the server starts
        # its fork server this way at the top of ``champion serve``, so that the libraries'
        # imports overlap the server's own start; requests sent meanwhile wait in the socket)
        if len(sys.argv) > 3 and sys.argv[2] == "--preload":
            preload([m for m in sys.argv[3].split(",") if m])
        serve(control)
    finally:
        control.close()


if __name__ == "__main__":
    main()
