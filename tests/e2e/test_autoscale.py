"""Local autoscaling: a version with max_workers above workers grows while its calls queue
and a core is idle, and shrinks back to its workers when the calls stop."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server


def waits(x):  # type: ignore[no-untyped-def]
    """A model that waits 50 ms on I/O (an index, a feature store) per call."""
    import time

    time.sleep(0.05)
    return x


@pytest.fixture(scope="module")
def scaling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("autoscale"), extra_args=["--scale-down-seconds", "2",
                                                                  "--max-workers", "2"])
    srv.start()
    yield srv
    srv.stop()


def _pool(srv: Server, name: str) -> dict[str, Any]:
    with srv.admin() as http:
        pools = http.get("/api/runtime").json()["pools"]
    return next(p for p in pools if p["version"].startswith(f"{name}:") and not p["background"])


def _load(srv: Server, name: str, threads: int, seconds: float) -> list[float]:
    """``threads`` callers in a closed loop for ``seconds``; the end time of each answer."""
    done: list[float] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def caller() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            while time.monotonic() < stop:
                r = http.post(f"/v1/{name}", json={"data": 1})
                assert r.status_code == 200, r.text
                with lock:
                    done.append(time.monotonic())

    pool = [threading.Thread(target=caller) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return done


def test_a_version_that_waits_grows_to_max_workers_and_shrinks_back(
        scaling_server: Server) -> None:
    with scaling_server.client() as c:
        c.deploy(waits, "waiter", workers=1, max_workers=3)
    assert _pool(scaling_server, "waiter")["max_workers"] == 3
    t0 = time.monotonic()
    done = _load(scaling_server, "waiter", threads=6, seconds=4.0)
    pool = _pool(scaling_server, "waiter")
    assert len(pool["workers"]) == 3, pool
    # one worker answers at most 20 a second (50 ms a call); the last second, with three
    # workers, answers well above that
    last = [t for t in done if t > t0 + 3.0]
    assert len(last) > 40, f"{len(last)} answers in the last second with {pool}"
    deadline = time.monotonic() + 15
    while len(_pool(scaling_server, "waiter")["workers"]) > 1:
        assert time.monotonic() < deadline, "the extra workers never stopped"
        time.sleep(0.2)
    # the floor stays, and answers
    assert len(_pool(scaling_server, "waiter")["workers"]) == 1
    with scaling_server.client() as c:
        assert c.predict("waiter", 7) == 7


def test_max_workers_not_above_workers_keeps_them_fixed(scaling_server: Server) -> None:
    with scaling_server.client() as c:
        c.deploy(waits, "fixed", workers=1, max_workers=1)  # its own value beats the server's
    _load(scaling_server, "fixed", threads=6, seconds=2.0)
    pool = _pool(scaling_server, "fixed")
    assert len(pool["workers"]) == 1 and pool["max_workers"] is None, pool


def test_the_server_default_applies_to_a_version_without_its_own(scaling_server: Server
                                                                  ) -> None:
    with scaling_server.client() as c:
        c.deploy(waits, "defaulted")
    _load(scaling_server, "defaulted", threads=6, seconds=2.5)
    pool = _pool(scaling_server, "defaulted")
    assert len(pool["workers"]) == 2 and pool["max_workers"] == 2, pool


def test_max_workers_is_shown_and_set_from_the_cli(scaling_server: Server, tmp_path: Path
                                                   ) -> None:
    (tmp_path / "m.py").write_text("def double(x):\n    return 2 * x\n")
    result = subprocess.run(
        [sys.executable, "-m", "champion", "deploy", f"{tmp_path / 'm.py'}:double",
         "--workers", "1", "--max-workers", "2", "--url", scaling_server.url,
         "--token", scaling_server.token], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    with scaling_server.client() as c:
        assert c.predict("double", 4) == 8
    assert _pool(scaling_server, "double")["max_workers"] == 2
