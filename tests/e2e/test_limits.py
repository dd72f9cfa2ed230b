"""Limits on what a model may do: the size of its answer and its worker's memory."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import Server


def sized(n):
    return "x" * n


def hungry(mib):
    block = bytearray(mib * 1024 * 1024)
    return len(block)


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("limited") / "data",
                 extra_args=["--max-answer-bytes", "4096", "--worker-memory-mb", "768",
                             "--preload-modules", ""]).start()
    with srv.client() as c:
        c.deploy(sized, "sized")
        c.deploy(hungry, "hungry")
    yield srv
    srv.stop()


def test_an_answer_over_the_cap_is_502_and_the_worker_keeps_serving(limited):
    with limited.admin() as http:
        before = http.get("/api/runtime").json()["pools"]
    with limited.http() as http:
        assert http.post("/v1/sized", json={"data": 100}).json()["data"] == "x" * 100
        resp = http.post("/v1/sized", json={"data": 10_000})
        assert resp.status_code == 502, resp.text
        err = resp.json()["error"]
        assert err["type"] == "answer_too_large"
        assert "over the limit of 4,096 bytes" in err["message"] and "max-answer-bytes" in (
            err["message"])
        assert resp.headers["x-champion-request-id"] == err["request_id"]
        assert http.post("/v1/sized", json={"data": 4000}).status_code == 200
    with limited.admin() as http:
        after = http.get("/api/runtime").json()["pools"]
    pool = next(p for p in after if p["version"] == "sized:1")
    assert pool["restarts"] == 0  # the answer was refused, its worker kept
    assert pool["workers"] == next(p for p in before if p["version"] == "sized:1")["workers"]


def test_a_model_past_its_memory_limit_is_502_out_of_memory(limited):
    with limited.http() as http:
        assert http.post("/v1/hungry", json={"data": 16}).json()["data"] == 16 * 1024 * 1024
        resp = http.post("/v1/hungry", json={"data": 2048})
        assert resp.status_code == 502, resp.text
        err = resp.json()["error"]
        assert err["type"] == "out_of_memory"
        assert "memory limit of 768 MiB" in err["message"]
        assert http.post("/v1/hungry", json={"data": 16}).status_code == 200
    deadline = time.monotonic() + 10
    with limited.admin() as http:
        while time.monotonic() < deadline:  # the request log is written in batches
            logged = http.get("/api/deployments/hungry/logs").json()["requests"]
            if any(r["status"] == 502 for r in logged):
                break
            time.sleep(0.1)
    assert next(r["error"] for r in logged if r["status"] == 502).startswith("out_of_memory")


def test_limits_out_of_bounds_refuse_to_start(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "champion", "serve", "--data-dir",
                          str(tmp_path / "d"), "--max-answer-bytes", "10"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--max-answer-bytes" in out.stderr


def slow(seconds):
    import time as _time

    _time.sleep(seconds)
    return seconds


def test_a_short_timeout_seconds_answers_504_without_restarting_the_worker(server, client,
                                                                          unique_name):
    """Found by schemathesis: timeout_seconds=2e-313 answered 504 and replaced the worker, so
    any caller could make workers restart at will. The caller's deadline answers it; the
    worker is replaced only past the version's own timeout."""
    client.deploy(slow, unique_name, timeout=10)
    with server.admin() as http:
        assert http.post(f"/v1/{unique_name}", json={"data": 0}).status_code == 200

        def pool():
            pools = http.get("/api/runtime").json()["pools"]
            return next(p for p in pools if p["version"] == f"{unique_name}:1")

        before = pool()
        for _ in range(3):
            resp = http.post(f"/v1/{unique_name}", json={"data": 0.5,
                                                        "timeout_seconds": 1e-300})
            assert resp.status_code == 504, resp.text
            assert resp.json()["error"]["type"] == "timeout"
            # the abandoned call finishes on its worker (0.5 s); until then a new call could
            # not start within its deadline and would answer 503
            time.sleep(0.7)
        assert http.post(f"/v1/{unique_name}", json={"data": 0}).status_code == 200
        after = pool()
    assert after["restarts"] == before["restarts"] and after["workers"] == before["workers"]
