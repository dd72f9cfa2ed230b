"""Canary rollouts through the real server: rollback on errors and on latency, a healthy walk
to promotion, a deadline without traffic, and two servers on one PostgreSQL store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PgDatabase, Server, pg_available
from tests.e2e.rawhttp import post_many

pytestmark = pytest.mark.slow  # seconds each: `pytest -m "not slow"` skips them


def stable(x):
    return 1


def fails_8_percent(x):
    if x % 100 < 8:
        raise ValueError("candidate bug")
    return 1


def slow(x):
    import time

    time.sleep(0.05)
    return 1


# Small steps for a test: 0 errors in ~110 requests show non-inferiority within 5 points.
FAST = {"steps": [10, 50, 100], "step_seconds": 2, "min_requests": 100,
        "interval_seconds": 0.5, "max_seconds": 90,
        "guardrails": {"error_rate": {"margin": 0.05}}}


class Traffic:
    """Requests with units to /v1/NAME in the background, round-robin over servers."""

    def __init__(self, servers: list[Server], name: str, batch: int = 200) -> None:
        self.servers = servers
        self.name = name
        self.batch = batch
        self.sent = 0
        self.failed_batches = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            servers = list(self.servers)  # a test may take a (killed) server out meanwhile
            srv = servers[(i // self.batch) % len(servers)]
            units = range(i, i + self.batch)
            try:
                results = post_many(srv.port, f"/v1/{self.name}",
                                    [{"data": u} for u in units],
                                    [{"X-Champion-Unit": f"u{u}"} for u in units],
                                    connections=4)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.failed_batches += 1
                i += self.batch
                continue
            for status, _ in results:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            self.sent += len(results)
            i += self.batch

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def wait_stopped(client: Any, exp_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        e = client.experiment(exp_id)
        if e["status"] == "stopped":
            return e
        time.sleep(0.2)
    report = client.report(exp_id)
    raise AssertionError(f"not stopped after {timeout} s: {report.get('view', {})}")


def actions(e: dict[str, Any]) -> list[str]:
    return [h["action"] for h in e["history"]]


@pytest.fixture()
def endpoint(client, unique_name) -> Iterator[str]:
    client.deploy(stable, unique_name)
    yield unique_name


def canary(client: Any, name: str, candidate_version: int, **settings: Any) -> dict[str, Any]:
    return client.create_experiment(name, "canary", {"stable": f"{name}:1",
                                                     "canary": f"{name}:{candidate_version}"},
                                    canary={**FAST, **settings})


def test_a_failing_candidate_is_rolled_back_in_its_first_step(server, client, endpoint):
    name = endpoint
    client.deploy(fails_8_percent, name)
    e = canary(client, name, 2)
    assert e["step"] == 0 and e["candidate_percent"] == 10
    t0 = time.time()
    with Traffic([server], name):
        stopped = wait_stopped(client, e["id"])
    took = time.time() - t0
    assert stopped["decision"] == {"action": "rollback"}
    stop = stopped["history"][-1]
    assert stop["actor"] == "controller" and "error_rate" in stop["reason"]
    assert "advance" not in actions(stopped), "rolled back before any step above the first"
    assert client.deployment(name)["aliases"]["production"] == 1
    report = client.report(e["id"])
    assert report["status"] == "rolled_back" and report["next"]["action"] == "none"
    assert report["history"][-1]["outcome"] == "rollback"
    # after the rollback every request is answered by production again
    answers = post_many(server.port, f"/v1/{name}", [{"data": 5}] * 50,
                        [{"X-Champion-Unit": f"u{i}"} for i in range(50)])
    assert {b["variant"] for _, b in answers} == {f"{name}:1"}
    print(f"\nbreach to rollback: canary started -> stopped in {took:.1f} s")


def test_a_slower_candidate_is_rolled_back_on_the_latency_guardrail(server, client, endpoint):
    name = endpoint
    client.deploy(slow, name)
    e = canary(client, name, 2)
    with Traffic([server], name):
        stopped = wait_stopped(client, e["id"])
    assert stopped["decision"] == {"action": "rollback"}
    assert "latency_p99" in stopped["history"][-1]["reason"], stopped["history"][-1]
    assert client.deployment(name)["aliases"]["production"] == 1


def test_a_healthy_candidate_walks_every_step_and_is_promoted(server, client, endpoint):
    name = endpoint
    client.deploy(stable, name)
    e = canary(client, name, 2)
    with Traffic([server], name) as traffic:
        stopped = wait_stopped(client, e["id"], timeout=90)
    assert stopped["decision"]["action"] == "promote", stopped["history"]
    assert actions(stopped) == ["create", "start", "advance", "advance", "stop"], (
        stopped["history"])
    assert client.deployment(name)["aliases"]["production"] == 2
    report = client.report(e["id"])
    assert [h["percent"] for h in report["history"]] == [10, 50, 100]
    assert [h["outcome"] for h in report["history"]] == ["advance", "advance", "promote"]
    assert [t["percent"] for t in report["timeline"]] == [10, 50, 100]
    assert traffic.statuses.get(500, 0) == 0
    tables = {t["id"] for t in report["view"]["tables"]}
    assert {"guardrails", "steps"} <= tables


def test_a_canary_without_traffic_holds_then_rolls_back_at_its_deadline(client, endpoint):
    name = endpoint
    client.deploy(stable, name)
    e = canary(client, name, 2, max_seconds=4)
    time.sleep(1.5)
    report = client.report(e["id"])
    assert report["status"] == "insufficient_data" and report["next"]["action"] == "hold"
    assert any(a["id"] == "no_data" for a in report["view"]["alerts"])
    stopped = wait_stopped(client, e["id"], timeout=20)
    assert stopped["decision"] == {"action": "rollback"}
    assert stopped["history"][-1]["reason"].startswith("deadline")
    assert "advance" not in actions(stopped)
    assert client.deployment(name)["aliases"]["production"] == 1


def test_canary_settings_are_checked_with_clear_errors(client, endpoint):
    from champion.errors import BadRequest

    name = endpoint
    client.deploy(stable, name)
    with pytest.raises(BadRequest, match=r"canary\.steps: must increase"):
        canary(client, name, 2, steps=[50, 10])
    with pytest.raises(BadRequest, match=r"canary\.step_secs: unknown setting"):
        canary(client, name, 2, step_secs=3)
    with pytest.raises(BadRequest, match="two variant names"):
        client.create_experiment(name, "canary", {"a": 1, "b": 2, "c": 1})
    with pytest.raises(BadRequest, match="settings for 'canary' given"):
        client.create_experiment(name, "ab", {"a": 1, "b": 2}, canary={"steps": [5]})
    assert client.experiments(name) == []


def test_manual_promote_and_rollback_at_any_time(client, endpoint):
    name = endpoint
    client.deploy(stable, name)
    e = canary(client, name, 2, step_seconds=600)
    paused = client.pause_experiment(e["id"], reason="look first")
    assert paused["status"] == "paused"
    client.resume_experiment(e["id"])
    promoted = client.promote_experiment(e["id"], reason="looks fine")
    assert promoted["decision"] == {"action": "promote", "variant": "canary", "version": 2}
    assert client.deployment(name)["aliases"]["production"] == 2
    again = canary(client, name, 1, step_seconds=600)
    rolled = client.rollback_experiment(again["id"], reason="changed my mind")
    assert rolled["decision"] == {"action": "rollback"}
    assert client.deployment(name)["aliases"]["production"] == 2


@pytest.mark.postgres
@pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running on 127.0.0.1:5432")
def test_two_servers_on_one_store_step_one_canary_once_per_step(tmp_path):
    db = PgDatabase()
    servers = [Server(tmp_path / f"data{i}", database_url=db.url,
                      extra_args=["--lease-seconds", "3"]) for i in range(2)]
    try:
        for srv in servers:
            srv.start()
        with servers[0].client() as c:
            c.deploy(stable, "shared")
            c.deploy(stable, "shared")
            e = canary(c, "shared", 2)
            with Traffic(servers, "shared"):
                stopped = wait_stopped(c, e["id"], timeout=90)
            assert actions(stopped) == ["create", "start", "advance", "advance", "stop"], (
                stopped["history"])
            assert stopped["decision"]["action"] == "promote"
            report = c.report(e["id"])
            assert [h["percent"] for h in report["history"]] == [10, 50, 100]
        with servers[1].client() as c2:  # the other server sees the promotion at once
            assert c2.deployment("shared")["aliases"]["production"] == 2
        leaders = []
        for srv in servers:
            with srv.http() as h:
                leaders.append("champion_controller_leader 1.0" in h.get("/metrics").text)
        assert sum(leaders) == 1, leaders
    finally:
        for srv in servers:
            srv.stop()
        db.drop()
