"""Several server replicas on one PostgreSQL store and one artifact directory: a deploy is
callable everywhere at once, assignment and feedback agree across replicas, the controller
runs on one of them and moves on when that one is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PgDatabase, Server, free_port, pg_available
from tests.e2e.rawhttp import post_many
from tests.e2e.test_canary import FAST, Traffic, actions, stable, wait_stopped

pytestmark = [
    pytest.mark.postgres, pytest.mark.slow,
    pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running on 127.0.0.1:5432"),
]


def start_replicas(tmp_path: Path, db: PgDatabase, n: int) -> list[Server]:
    shared = tmp_path / "artifacts"
    servers = [Server(tmp_path / f"replica{i}", database_url=db.url,
                      extra_args=["--artifacts-dir", str(shared), "--lease-seconds", "2",
                                  "--controller-interval", "0.5"]) for i in range(n)]
    for srv in servers:
        srv.start()
    return servers


def leader(servers: list[Server]) -> Server | None:
    for srv in servers:
        with srv.http() as h:
            if "champion_controller_leader 1.0" in h.get("/metrics").text:
                return srv
    return None


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    db = PgDatabase()
    servers = start_replicas(tmp_path_factory.mktemp("replicas"), db, 3)
    yield servers
    for srv in servers:
        srv.stop()
    db.drop()


def double(x):
    return 2 * x


def variant_a(x):
    return "a"


def variant_b(x):
    return "b"


def test_a_deploy_through_one_replica_is_callable_through_every_other_at_once(replicas):
    with replicas[0].client() as c:
        c.deploy(double, "everywhere")
    for srv in replicas:  # no waiting: the others look the new name up on a miss
        with srv.client() as c:
            assert c.predict("everywhere", 21) == 42
    with replicas[1].client() as c:
        c.deploy(variant_a, "everywhere")
        c.promote("everywhere", 2)
    time.sleep(1.2)  # alias moves reach every replica within poll_interval
    for srv in replicas:
        with srv.client() as c:
            assert c.predict("everywhere", 21) == "a"


def test_ab_units_on_random_replicas_keep_one_variant_and_feedback_counts_once(replicas):
    with replicas[0].client() as c:
        c.deploy(variant_a, "split")
        c.deploy(variant_b, "split")
        e = c.create_experiment("split", "ab", {"a": 1, "b": 2}, metrics={"primary": "reward"})
    time.sleep(1.2)
    seen: dict[str, set[str]] = {}
    answers: list[tuple[str, dict]] = []
    for i, srv in enumerate(replicas * 200):
        units = [f"u{(i * 7 + k) % 150}" for k in range(5)]
        results = post_many(srv.port, "/v1/split", [{"data": 0}] * 5,
                            [{"X-Champion-Unit": u} for u in units], connections=1)
        for u, (status, body) in zip(units, results, strict=True):
            assert status == 200
            answers.append((u, body))
            seen.setdefault(u, set()).add(body["variant"])
    assert all(len(v) == 1 for v in seen.values()), "every unit stays on one variant"
    items = [{"request_id": body["request_id"], "reward": 1} for _, body in answers[:300]]
    for k, srv in enumerate(replicas):  # every replica gets the same feedback: counted once
        with srv.client() as c:
            r = c.feedback("split", items=items)
            assert (r["accepted"], r["duplicates"]) == ((300, 0) if k == 0 else (0, 300))
    time.sleep(0.5)
    reports = []
    for srv in replicas:
        with srv.client() as c:
            reports.append(c.report(e["id"]))
    same = [{k: v for k, v in r.items() if k != "generated_at"} for r in reports]
    assert same[0] == same[1] == same[2]
    converted = {u for u, _ in answers[:300]}
    counted = sum(round(a["metrics"]["reward"]["mean"] * a["units"]) for a in reports[0]["arms"])
    assert counted == len(converted)
    with replicas[0].client() as c:
        c.stop_experiment(e["id"])


def test_a_canary_goes_on_on_another_replica_when_its_controller_is_killed(tmp_path):
    db = PgDatabase()
    servers = start_replicas(tmp_path, db, 3)
    try:
        with servers[0].client() as c:
            c.deploy(stable, "killed")
            c.deploy(stable, "killed")
            # What is tested is the controller's failover. The latency guardrail would compare
            # the canary's last step, served by the two replicas left after the kill, with the
            # control's intervals, served by three: on two shared cores that judged the
            # canary 4x slower in some runs (same function on both arms), so it is off here
            # (tests/e2e/test_canary.py tests the latency guardrail itself).
            settings = {**FAST, "guardrails": {**FAST["guardrails"], "latency": False}}
            e = c.create_experiment("killed", "canary", {"stable": "killed:1",
                                                         "canary": "killed:2"},
                                    canary=settings)
            with Traffic(servers, "killed") as traffic:
                deadline = time.time() + 60
                while "advance" not in actions(c.experiment(e["id"])):
                    assert time.time() < deadline, c.report(e["id"])["next"]
                    time.sleep(0.2)
                first = leader(servers)
                assert first is not None
                first.stop(signal.SIGKILL)
                traffic.servers.remove(first)
                survivor = next(s for s in servers if s is not first)
        with survivor.client() as c2:
            with Traffic(traffic.servers, "killed"):
                stopped = wait_stopped(c2, e["id"], timeout=90)
            assert actions(stopped) == ["create", "start", "advance", "advance", "stop"], (
                stopped["history"])
            last = stopped["history"][-1]
            assert stopped["decision"]["action"] == "promote", {
                k: last.get(k) for k in ("action", "reason", "to_status", "detail")}
            report = c2.report(e["id"])
            assert [h["percent"] for h in report["history"]] == [10, 50, 100]
        second = leader([s for s in servers if s is not first])
        assert second is not None and second is not first
    finally:
        for srv in servers:
            srv.stop()
        db.drop()


def test_serve_replicas_runs_several_processes_behind_one_port(tmp_path):
    db = PgDatabase()
    port = free_port()
    env = {**os.environ, "CHAMPION_DATABASE_URL": db.url, "CHAMPION_TOKEN": "replica-token"}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "champion", "serve", "--replicas", "2",
                             "--port", str(port), "--data-dir", str(tmp_path / "d")],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(3)  # the lease settles on one of them
        flags = set()
        with httpx.Client(base_url=url) as h:
            for _ in range(60):  # new connections: the kernel spreads them over the processes
                text = httpx.get(url + "/metrics").text
                flags.add("champion_controller_leader 1.0" in text)
            assert flags == {True, False}, "two processes, one of them the leader"
            headers = {"authorization": "Bearer replica-token"}
            assert h.get("/api/deployments", headers=headers).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
        db.drop()
