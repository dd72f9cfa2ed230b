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
    {"op": "fork", "env": {...}, "nice": 0, "modules": [...], "pickles": [...]}  + fd
                                                          -> {"ok": true, "pid": 1234}

A fork's ``modules`` and ``pickles`` are preloaded first (as by a preload request).

``python -m champion.runtime.zygote FD --preload numpy,sklearn`` imports those too, one at a
time, in that order, before it reads a request or, when one is waiting, after it: a deploy
that arrives while the start's list is being imported (scikit-learn alone takes most of a
second) waits for the module under way, not for the whole list; its own preload names what
its version needs, and its worker is forked as soon as those are in.
"""

from __future__ import annotations

import importlib
import json
import os
import select
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


def _waiting(control: socket.socket) -> bool:
    return bool(select.select([control], [], [], 0)[0])


def serve(control: socket.socket, startup: Sequence[str] = ()) -> None:
    """Answer requests until the server goes away; import ``startup``'s modules, in order,
    whenever no request is waiting."""
    signal.signal(signal.SIGCHLD, _reap)
    pending = list(startup)
    while True:
        if pending and not _waiting(control):
            # a module that cannot be imported here is tried again, and reported, by the
            # worker whose version names it
            preload([pending.pop(0)])
            continue
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
            preload(list(request.get("modules", [])), list(request.get("pickles", [])))
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
        # ``--preload a,b``: import these while no request waits (the server starts its fork
        # server this way at the top of ``champion serve``, so that the libraries' imports
        # overlap the server's own start)
        startup = []
        if len(sys.argv) > 3 and sys.argv[2] == "--preload":
            startup = [m for m in sys.argv[3].split(",") if m]
        serve(control, startup)
    finally:
        control.close()


if __name__ == "__main__":
    main()
