"""Faults in user code, through real worker processes: raise, hang, crash, idle, fail to load."""

from __future__ import annotations

import ctypes
import operator
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from champion.errors import DeployError


def raises(x):
    raise ValueError(f"cannot score {x!r}")


def pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def die(how):
    if how == "exit":
        os._exit(1)
    if how == "segfault":
        ctypes.string_at(0)
    return os.getpid()


def echo(x):
    return x


class FailsToLoad:
    """Pickles fine on the client; unpickling it (in the worker) raises ZeroDivisionError."""

    def __reduce__(self):
        return (operator.truediv, (1, 0))


BROKEN = FailsToLoad()


def uses_broken(x):
    return BROKEN


def pools(server) -> dict[str, dict[str, Any]]:
    with server.admin() as admin:
        resp = admin.get("/api/runtime")
    assert resp.status_code == 200, resp.text
    return {p["version"]: p for p in resp.json()["pools"]}


def wait_for(predicate, timeout: float = 5.0, step: float = 0.05) -> float:
    """Poll until ``predicate()`` is true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # Still in the process table: gone if it is a zombie nobody has reaped yet.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_model_exception_is_500_model_error_without_traceback(server, client, unique_name):
    client.deploy(raises, unique_name)
    with server.http() as http:
        resp = http.post(f"/v1/{unique_name}", json={"data": "abc"})
        assert resp.status_code == 500
        err = resp.json()["error"]
        assert err["type"] == "model_error"
        assert "ValueError" in err["message"] and "cannot score 'abc'" in err["message"]
        assert err["request_id"] == resp.headers["x-champion-request-id"]
        assert "Traceback" not in resp.text
        # The traceback goes to the server's log instead.
        wait_for(lambda: "cannot score 'abc'" in server.log())
        log = server.log()
        assert "Traceback (most recent call last)" in log
        assert 'raise ValueError(f"cannot score {x!r}")' in log
        # The worker survived the exception: the same deployment answers the next call.
        assert http.post(f"/v1/{unique_name}", json={"data": 1}).json()["error"]["type"] == (
            "model_error")


def test_model_exception_in_a_batch_names_the_row(client, unique_name):
    def fails_on_three(x):
        if x == 3:
            raise KeyError("three")
        return x

    client.deploy(fails_on_three, unique_name)
    with pytest.raises(Exception, match=r"KeyError: 'three' \(batch row 1\)") as info:
        client.predict(unique_name, [[10, 1], [11, 3], [12, 4]])
    assert type(info.value).__name__ == "ModelError"
    assert info.value.status_code == 500


def test_hanging_model_times_out_with_504_and_its_worker_is_replaced(server, client, unique_name):
    client.deploy(pid_after, unique_name, timeout=1)
    first = client.predict(unique_name, 0)
    label = f"{unique_name}:1"
    assert pools(server)[label]["workers"] == [first]
    with server.http() as http:
        started = time.monotonic()
        resp = http.post(f"/v1/{unique_name}", json={"data": 30})
        elapsed = time.monotonic() - started
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"]["type"] == "timeout"
    assert "1 s" in resp.json()["error"]["message"]
    assert 0.9 < elapsed < 5
    second = client.predict(unique_name, 0)
    assert second != first
    wait_for(lambda: process_gone(first))
    status = pools(server)[label]
    assert status["workers"] == [second]
    assert status["restarts"] >= 1


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_crashing_model_is_502_and_restarted_while_others_keep_answering(
        server, client, unique_name, how):
    healthy = unique_name + "h"
    client.deploy(echo, healthy)
    client.deploy(die, unique_name)
    before = client.predict(unique_name, "ok")

    stop = threading.Event()
    statuses: list[int] = []

    def hammer() -> None:
        with server.http() as http:
            while not stop.is_set():
                resp = http.post(f"/v1/{healthy}", json={"data": "still here"})
                statuses.append(resp.status_code)
                assert resp.json()["data"] == "still here"

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hammer) for _ in range(4)]
        time.sleep(0.1)
        with server.http() as http:
            resp = http.post(f"/v1/{unique_name}", json={"data": how})
            assert resp.status_code == 502, resp.text
            assert resp.json()["error"]["type"] == "worker_crashed"
            after = http.post(f"/v1/{unique_name}", json={"data": "ok"})
        time.sleep(0.1)
        stop.set()
        for f in futures:
            f.result()
    assert after.status_code == 200, after.text
    assert after.json()["data"] != before
    assert statuses and set(statuses) == {200}
    assert pools(server)[f"{unique_name}:1"]["workers"] == [after.json()["data"]]


def test_workers_setting_runs_that_many_processes_under_load(server, client, unique_name):
    client.deploy(pid_after, unique_name, workers=2)
    with ThreadPoolExecutor(8) as pool:
        pids = set(pool.map(lambda _: client.predict(unique_name, 0.3), range(8)))
    assert len(pids) == 2
    assert sorted(pools(server)[f"{unique_name}:1"]["workers"]) == sorted(pids)


def test_idle_workers_are_stopped_and_started_again_on_the_next_call(
        server, client, unique_name):
    client.deploy(pid_after, unique_name, idle_timeout=1)
    first = client.predict(unique_name, 0)
    label = f"{unique_name}:1"
    assert label in pools(server)
    took = wait_for(lambda: label not in pools(server), timeout=4)
    assert took > 0.5
    wait_for(lambda: process_gone(first))
    second = client.predict(unique_name, 0)
    assert second != first
    assert pools(server)[label]["workers"] == [second]


def test_value_that_fails_to_load_fails_the_deploy_clearly(server, client, unique_name):
    with pytest.raises(DeployError) as info:
        client.deploy(uses_broken, unique_name)
    message = str(info.value)
    assert "ZeroDivisionError" in message and unique_name in message
    assert ":-" not in message  # no provisional pool number leaks into the message
    assert unique_name not in [d["name"] for d in client.deployments()]
    assert not [k for k in pools(server) if k.startswith(unique_name)]
