"""The runtime contract, on both runtimes (local worker processes and Ray Serve).

The same request shapes and answers; a model that raises answers 500 with its type and
message; a hang answers 504 and the version answers again afterwards; a crash answers 502
for the call in flight while other versions keep answering; versions are isolated from each
other; micro-batching merges concurrent calls; every experiment strategy (shadows too)
works unchanged. The Ray runs share one local Ray instance per session (``ray_cluster``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from champion.errors import DeployError, ModelError
from tests.conftest import free_port

SCALE = 3


def scaled(x):
    return x * SCALE


def pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def raises(x):
    if x == 3:
        raise KeyError("three")
    if isinstance(x, str):
        raise ValueError(f"cannot score {x!r}")
    return x


def die(how):
    if how == "exit":
        os._exit(1)
    if how == "segfault":
        ctypes.string_at(0)
    return os.getpid()


def echo(x):
    return x


def doubled(xs):
    time.sleep(0.01)  # long enough for requests to queue behind a running batch
    return [{"y": 2 * x, "batch": len(xs)} for x in xs]


def rank_a(x):
    return [{"id": f"i{j}", "score": float(j)} for j in range(5)]


def rank_b(x):
    return [{"id": f"i{j}", "score": float(j)} for j in reversed(range(5))]


class Values:
    """Pickles with its value: each version keeps the one it was deployed with."""

    def __init__(self, offset: int) -> None:
        self.offset = offset


MODEL = Values(1)


def with_model(x):
    return x + MODEL.offset


@pytest.fixture()
def rt(runtime_server) -> Any:
    return runtime_server


@pytest.fixture()
def client(rt) -> Iterator[Any]:
    c = rt.client()
    yield c
    c.close()


@pytest.fixture()
def names(client) -> Iterator[list[str]]:
    """Deployment names a test uses; deleted afterwards (on Ray, their applications go)."""
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(Exception):
            client.delete(name)


@pytest.fixture()
def name(names, unique_name) -> str:
    names.append(unique_name)
    return unique_name


def test_single_and_batch_requests_answer_the_same_on_both_runtimes(rt, client, name):
    v = client.deploy(scaled, name)
    assert v.version == 1
    with rt.http() as http:
        single = http.post(f"/v1/{name}", json={"data": 5})
        assert single.status_code == 200, single.text
        body = single.json()
        assert body["data"] == 15 and body["variant"] == f"{name}:1"
        assert body["request_id"] == single.headers["x-champion-request-id"]
        batch = http.post(f"/v1/{name}/1", json={"data": [[10, 1], ["b", 2], [12, 3]]})
        assert batch.json()["data"] == [[10, 3], ["b", 6], [12, 9]]
        latest = http.post(f"/v1/{name}/latest", json={"data": 7})
        assert latest.json()["data"] == 21


def test_model_exception_is_500_with_its_type_and_message_and_its_batch_row(
        rt, client, name):
    client.deploy(raises, name)
    with rt.http() as http:
        resp = http.post(f"/v1/{name}", json={"data": "abc"})
        assert resp.status_code == 500
        err = resp.json()["error"]
        assert err["type"] == "model_error"
        assert "ValueError" in err["message"] and "cannot score 'abc'" in err["message"]
        assert "Traceback" not in resp.text
        # the version survives its exception
        assert http.post(f"/v1/{name}", json={"data": 1}).json()["data"] == 1
    with pytest.raises(ModelError, match=r"KeyError: 'three' \(batch row 1\)"):
        client.predict(name, [[10, 1], [11, 3], [12, 4]])


def test_hang_is_504_and_the_version_answers_again_from_a_new_worker(rt, client, name):
    client.deploy(pid_after, name, timeout=1)
    first = client.predict(name, 0)
    with rt.http() as http:
        started = time.monotonic()
        resp = http.post(f"/v1/{name}", json={"data": 30})
        elapsed = time.monotonic() - started
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"]["type"] == "timeout"
    assert 0.9 < elapsed < 8
    second = client.predict(name, 0)
    assert second != first  # the hung worker was replaced


def test_crash_is_502_for_the_call_in_flight_while_others_keep_answering(
        rt, client, names, unique_name):
    healthy, crashing = unique_name + "h", unique_name
    names += [healthy, crashing]
    client.deploy(echo, healthy)
    client.deploy(die, crashing)
    before = client.predict(crashing, "ok")

    stop = threading.Event()
    statuses: list[int] = []

    def hammer() -> None:
        with rt.http() as http:
            while not stop.is_set():
                resp = http.post(f"/v1/{healthy}", json={"data": "still here"})
                statuses.append(resp.status_code)
                assert resp.json()["data"] == "still here"

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(hammer) for _ in range(3)]
        time.sleep(0.1)
        with rt.http() as http:
            answers = []
            for how in ("exit", "segfault"):
                resp = http.post(f"/v1/{crashing}", json={"data": how})
                assert resp.status_code == 502, resp.text
                assert resp.json()["error"]["type"] == "worker_crashed"
                after = http.post(f"/v1/{crashing}", json={"data": "ok"})
                assert after.status_code == 200, after.text
                answers.append(after.json()["data"])
        time.sleep(0.1)
        stop.set()
        for f in futures:
            f.result()
    assert before not in answers and len(set(answers)) == 2  # a new worker each time
    assert statuses and set(statuses) == {200}


def test_versions_are_isolated_from_each_other(client, name):
    client.deploy(with_model, name)
    MODEL.offset = 100
    try:
        client.deploy(with_model, name)
    finally:
        MODEL.offset = 1
    assert client.predict(name, 1, version=1) == 2
    assert client.predict(name, 1, version=2) == 101


def test_micro_batching_merges_concurrent_requests(rt, client, name):
    client.deploy(doubled, name, batch_max_size=16)

    async def run() -> list[Any]:
        async with httpx.AsyncClient(base_url=rt.url, timeout=60) as http:
            rs = await asyncio.gather(*(http.post(f"/v1/{name}", json={"data": v})
                                        for v in range(48)))
            return [r.json() for r in rs]

    answers = asyncio.run(run())
    assert [a["data"]["y"] for a in answers] == [2 * v for v in range(48)]
    sizes = [a["data"]["batch"] for a in answers]
    assert max(sizes) > 1 and max(sizes) <= 16
    out = client.predict(name, [[7, 1], [8, 2]])
    assert [[i, y["y"]] for i, y in out] == [[7, 2], [8, 4]]


def test_a_version_that_fails_to_load_fails_its_deploy(rt, client, unique_name, request):
    with pytest.raises(DeployError, match="ZeroDivisionError") as info:
        client.deploy(uses_broken, unique_name)
    assert ":-" not in str(info.value)  # no provisional number leaks into the message
    assert unique_name not in [d["name"] for d in client.deployments()]
    if rt.runtime == "ray":  # the load check's Serve application went with it
        cluster = request.getfixturevalue("ray_cluster")
        assert not [a for a in cluster.apps() if f"~{unique_name}~" in a]


class FailsToLoad:
    def __reduce__(self):
        import operator

        return (operator.truediv, (1, 0))


BROKEN = FailsToLoad()


def uses_broken(x):
    return BROKEN


STRATEGY_SETTINGS: dict[str, dict[str, Any]] = {
    "ab": {},
    "canary": {"canary": {"steps": [25, 100], "step_seconds": 86400, "max_seconds": 172800}},
    "bandit": {"bandit": {"update_seconds": 1, "decide_threshold": None}},
    "interleave": {"interleave": {"k": 5}},
    "shadow": {},
}


def test_every_experiment_strategy_and_shadows_work_unchanged(rt, client, name):
    client.deploy(rank_a, name)
    client.deploy(rank_b, name)
    for strategy, settings in STRATEGY_SETTINGS.items():
        arms = {"control": 1, "candidate": 2}
        e = client.create_experiment(name, strategy, arms, **settings)
        with rt.http() as http:
            for i in range(20):
                resp = http.post(f"/v1/{name}", json={"data": i},
                                 headers={"X-Champion-Unit": f"u{i}"})
                assert resp.status_code == 200, (strategy, resp.text)
                ids = sorted(item["id"] for item in resp.json()["data"])
                assert ids == [f"i{j}" for j in range(5)], strategy
        if strategy == "shadow":  # the copies ran on the candidate, off the request path
            for _ in range(100):
                report = client.report(e["id"])["shadows"]["candidate"]
                if report["counts"]["pairs"] >= 20:
                    break
                time.sleep(0.1)
            assert report["counts"]["pairs"] >= 20
        client.stop_experiment(e["id"])


# ------------------------------------------------------------------ Ray only


@pytest.fixture()
def on_ray(rt) -> Any:
    if rt.runtime != "ray":
        pytest.skip("about the Ray runtime only")
    return rt


def replica_after(seconds):
    """The pids of the Ray replica (the worker process's parent) and of the worker."""
    time.sleep(seconds)
    return [os.getppid(), os.getpid()]


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_workers_are_serve_replicas_a_killed_one_is_502_in_flight_and_replaced(
        on_ray, client, name, request):
    """workers=2: two Serve replicas (two Ray actors). One is SIGKILLed during calls: those
    on it answer 502, those on the other 200; Serve replaces it; deleting the deployment
    deletes its Serve application."""
    import signal

    ray_cluster = request.getfixturevalue("ray_cluster")
    client.deploy(replica_after, name, workers=2)
    with ThreadPoolExecutor(8) as pool:
        pids = dict(pool.map(lambda _: client.predict(name, 0.3), range(8)))
    actors = set(pids)
    assert len(actors) == 2
    assert len([a for a in ray_cluster.apps() if f"~{name}~" in a]) == 1
    victim = min(actors)
    with ThreadPoolExecutor(4) as pool, on_ray.http() as http:
        slow = [pool.submit(lambda: httpx.post(f"{on_ray.url}/v1/{name}", json={"data": 3},
                                               timeout=60)) for _ in range(4)]
        time.sleep(1.0)  # the four calls are running, spread over both replicas
        os.kill(victim, signal.SIGKILL)  # a Ray actor of this session's own instance
        statuses = sorted(f.result().status_code for f in slow)
        assert 502 in statuses and 200 in statuses, statuses
        crashed = next(f.result() for f in slow if f.result().status_code == 502)
        assert crashed.json()["error"]["type"] == "worker_crashed"
        # Serve replaces the replica; meanwhile the survivor keeps answering
        deadline, seen = time.monotonic() + 60, set()
        while time.monotonic() < deadline and len(seen - {victim}) < 2:
            resp = http.post(f"/v1/{name}", json={"data": 0})
            if resp.status_code == 200:
                seen.add(resp.json()["data"][0])
            else:
                assert resp.status_code == 502, resp.text
                time.sleep(0.1)
    assert len(seen - {victim}) == 2, seen
    assert gone(pids[victim])  # its worker process went with it, mid-call
    client.delete(name)
    deadline = time.monotonic() + 20
    while [a for a in ray_cluster.apps() if f"~{name}~" in a]:
        assert time.monotonic() < deadline, "the Serve application outlived its deployment"
        time.sleep(0.2)


def waits_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)
    return 1


def test_a_replica_takes_the_calls_past_its_workers_depth(on_ray, client, name, request,
                                                           tmp_path):
    """Forty calls at once on one replica whose worker runs them one by one: the replica
    takes all forty and queues them for its worker (a replica that took only the worker's
    depth left the rest in Serve's router, which retried with backoff: a quarter of the
    throughput at c=64, seconds of backlog after). While the first call blocks, the replica
    has them all and still answers another call of its own."""
    ray_cluster = request.getfixturevalue("ray_cluster")
    flag = tmp_path / "go"
    client.deploy(waits_for, name)
    [app] = [a for a in ray_cluster.apps() if f"~{name}~" in a]
    with ThreadPoolExecutor(40) as pool:
        calls = [pool.submit(lambda: httpx.post(f"{on_ray.url}/v1/{name}",
                                                json={"data": str(flag)}, timeout=60))
                 for _ in range(40)]
        try:
            deadline, taken = time.monotonic() + 30, None
            while time.monotonic() < deadline:
                taken = ray_cluster.replica_calls(app)
                if taken == 40:
                    break
                time.sleep(0.1)
            assert taken == 40, taken
        finally:
            flag.touch()
        assert [f.result().status_code for f in calls] == [200] * 40
        assert {f.result().json()["data"] for f in calls} == {1}


def test_an_unreachable_ray_address_is_one_clear_line(tmp_path):
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # (not imported here: it is heavy)
        pytest.skip("Ray is not installed (pip install 'champion[ray]')")
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "champion", "serve", "--runtime", "ray", "--ray-address",
         f"127.0.0.1:{port}", "--port", str(free_port()), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in proc.stderr
