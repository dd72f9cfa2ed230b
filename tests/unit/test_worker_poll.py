"""The worker's adaptive polling (runtime/worker.py ``Connection``): frames arrive whole
whether the worker polls or sleeps, the window grows while calls come within it and falls to
0 when they come far apart, and the end of the socket is seen in either state."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from champion.runtime import protocol as p
from champion.runtime import worker
from champion.runtime.worker import POLL_MIN, Connection


@pytest.fixture(autouse=True)
def _uncontended(monkeypatch):
    """The window's rules alone: a yield that took long (a busy machine) does not count."""
    monkeypatch.setattr(worker, "CONTENDED_S", float("inf"))


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield a, b
    a.close()
    b.close()


class _Later:
    """``data`` written to ``sock`` after ``delay`` seconds by another process (a thread
    would share the GIL with the polling loop, and its wake-up would look like contention)."""

    def __init__(self, sock: socket.socket, data: bytes, delay: float) -> None:
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            try:
                time.sleep(delay)
                sock.sendall(data)
            finally:
                os._exit(0)

    def join(self) -> None:
        os.waitpid(self.pid, 0)


def _send_later(sock: socket.socket, data: bytes, delay: float) -> _Later:
    return _Later(sock, data, delay)


def test_calls_within_the_window_keep_it_open_and_arrive_whole(pair) -> None:
    a, b = pair
    conn = Connection(b, poll_max=0.05)
    for i in range(20):
        body = b'{"calls": [[[%d], {}]]}' % i
        frame = p.frame(p.CALL, i, body)
        # a frame in two pieces, the second while the worker polls
        a.sendall(frame[:3])
        thread = _send_later(a, frame[3:], 0.001)
        assert conn.recv() == (p.CALL, i, body)
        thread.join()
    assert conn.window == pytest.approx(0.05)


def test_the_window_shrinks_to_nothing_when_calls_come_far_apart(pair) -> None:
    a, b = pair
    conn = Connection(b, poll_max=0.004)
    windows = []
    for i in range(8):
        thread = _send_later(a, p.frame(p.CALL, i, b"{}"), 0.03)  # far beyond the window
        assert conn.recv() == (p.CALL, i, b"{}")
        thread.join()
        windows.append(conn.window)
    assert windows[0] == pytest.approx(0.002)  # halved once per long wait
    assert windows == sorted(windows, reverse=True)
    assert windows[-1] == 0.0
    # calls that come close together again open it step by step, from POLL_MIN
    a.sendall(p.frame(p.CALL, 99, b"{}"))
    assert conn.recv() == (p.CALL, 99, b"{}")
    assert conn.window == pytest.approx(POLL_MIN)


def test_without_polling_the_window_stays_shut(pair) -> None:
    a, b = pair
    conn = Connection(b, poll_max=0.0)
    for i in range(3):
        a.sendall(p.frame(p.CALL, i, b"{}"))
        assert conn.recv() == (p.CALL, i, b"{}")
    assert conn.window == 0.0


@pytest.mark.parametrize("poll_max", [0.0, 0.5])
def test_the_end_of_the_socket_is_seen_polling_or_asleep(pair, poll_max: float) -> None:
    a, b = pair
    conn = Connection(b, poll_max=poll_max)
    a.sendall(p.frame(p.CALL, 1, b"{}"))
    assert conn.recv() == (p.CALL, 1, b"{}")
    closer = threading.Timer(0.01, a.shutdown, args=(socket.SHUT_WR,))
    closer.start()
    started = time.perf_counter()
    assert conn.recv() is None
    assert time.perf_counter() - started < 0.4  # seen at once, not after the window
    closer.join()


def test_the_limit_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CHAMPION_WORKER_POLL_US", "750")
    assert worker.poll_from_env() == pytest.approx(0.00075)
    for bad in ("", "x", "-5"):
        monkeypatch.setenv("CHAMPION_WORKER_POLL_US", bad)
        assert worker.poll_from_env() == 0.0
    monkeypatch.delenv("CHAMPION_WORKER_POLL_US")
    assert worker.poll_from_env() == 0.0


def test_a_yield_that_gave_the_cpu_away_stops_polling_for_a_while(pair, monkeypatch) -> None:
    a, b = pair
    monkeypatch.setattr(worker, "CONTENDED_S", -1.0)  # every yield counts as given away
    conn = Connection(b, poll_max=0.05)
    later = _send_later(a, p.frame(p.CALL, 1, b"{}"), 0.01)
    assert conn.recv() == (p.CALL, 1, b"{}")  # asleep after the first yield, then woken
    later.join()
    assert conn.window == 0.0 and conn.quiet_until > time.perf_counter()
    for i in range(3):  # quick calls do not reopen the window while it is quiet
        a.sendall(p.frame(p.CALL, i, b"{}"))
        assert conn.recv() == (p.CALL, i, b"{}")
    assert conn.window == 0.0
