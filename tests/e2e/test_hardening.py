"""Defects an outside probe found (issue 14), each pinned through the real server.

An anonymous caller gets a 4xx in the one error shape for anything it can send, never a
500, a traceback, a path or a driver's error text.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

JSON = {"content-type": "application/json"}


def echo(x):
    return x


def batched_echo(xs):
    return list(xs)


@pytest.fixture()
def http(server) -> Iterator[httpx.Client]:
    with server.http() as h:
        yield h


def error_of(resp: httpx.Response, status: int, type_name: str | None = None) -> dict[str, Any]:
    """The one error shape, checked; returns its ``error`` object."""
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["type"], str) and err["type"]
    assert isinstance(err["message"], str) and err["message"]
    if type_name is not None:
        assert err["type"] == type_name, err
    assert "Traceback" not in resp.text and "/tmp" not in resp.text
    return dict(err)


def _nested(key: str, depth: int) -> bytes:
    return (b'{"' + key.encode() + b'": ' + b"[" * depth + b"]" * depth) + b"}"


@pytest.fixture()
def served(client, unique_name) -> tuple[str, str]:
    """A deployment and a request id it issued."""
    client.deploy(echo, unique_name)
    with httpx.Client(base_url=client.url, timeout=30) as h:
        rid = h.post(f"/v1/{unique_name}", json={"data": 1}).json()["request_id"]
    return unique_name, rid


# ------------------------------------------------------------ anonymous 500s -> 400


def test_feedback_with_a_non_ascii_request_id_is_400(http, served):
    name, rid = served
    forged = rid[:-1] + "\u00e9"
    err = error_of(http.post(f"/v1/{name}/feedback", json={"request_id": forged, "reward": 1}),
                   400)
    assert "not issued by this server" in err["message"]
    assert http.post(f"/v1/{name}/feedback",
                     json={"request_id": rid, "reward": 1}).json()["accepted"] == 1


@pytest.mark.parametrize("key", ["label", "clicks"])
def test_feedback_nested_too_deeply_is_400(http, served, key):
    name, rid = served
    body = (b'{"request_id": "' + rid.encode() + b'", ' + _nested(key, 300)[1:])
    err = error_of(http.post(f"/v1/{name}/feedback", content=body, headers=JSON), 400)
    assert "nested too deeply" in err["message"] or "clicks" in err["message"]


def test_deep_data_on_a_micro_batched_deployment_is_400(http, client, unique_name):
    client.deploy(batched_echo, unique_name, batch_max_size=8)
    for depth, status in [(200, 200), (253, 400), (300, 400), (1000, 400)]:
        resp = http.post(f"/v1/{unique_name}", content=_nested("data", depth), headers=JSON)
        if status == 400:
            err = error_of(resp, 400, "invalid_input")
            assert "nested too deeply" in err["message"]
        else:
            assert resp.status_code == 200, (depth, resp.text[:300])
    assert http.post(f"/v1/{unique_name}", json={"data": 3}).json()["data"] == 3


@pytest.mark.parametrize("field", ["unit", "event_id"])
def test_nul_in_feedback_text_fields_is_400(http, served, field):
    name, rid = served
    item: dict[str, Any] = {"unit": "u\x00x", "metric": "m", "value": 1}
    if field == "event_id":
        item = {"request_id": rid, "clicks": [1], "event_id": "e\x00"}
    err = error_of(http.post(f"/v1/{name}/feedback", json=item), 400)
    assert field in err["message"]


def test_nul_in_the_unit_header_of_an_inference_is_served(http, served):
    name, _ = served
    resp = http.post(f"/v1/{name}", json={"data": 1, "unit": "a\x00b"})
    assert resp.status_code == 200, resp.text


# ------------------------------------------------------------ keep-alive after a 500


def _raw_exchange(port: int, requests: list[bytes]) -> list[bytes]:
    """Send requests one after the other on one connection; the raw responses."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        for req in requests:
            try:
                s.sendall(req)
            except OSError:
                out.append(b"")
                continue
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                try:
                    chunk = f.read(1)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                head += chunk
            if not head:
                out.append(b"")
                continue
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            out.append(head + f.read(length))
    return out


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Iterator[Any]:
    from tests.conftest import Server

    srv = Server(tmp_path_factory.mktemp("faulty"),
                 extra_args=["--strategy-modules", "tests.e2e.faults"])
    srv.start()
    yield srv
    srv.stop()


def test_an_unexpected_500_closes_the_connection_saying_so(faulty):
    get = b"GET /healthz%s HTTP/1.1\r\nHost: x\r\n\r\n"
    first, = _raw_exchange(faulty.port, [get % b"?fault=raise"])
    head = first.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 500"), first
    assert b"\r\nconnection: close" in head, head
    assert b"/srv/secret" not in first and b"Traceback" not in first
    assert b"internal server error" in first
    # on a new connection the server answers as before
    assert httpx.get(faulty.url + "/healthz").status_code == 200


# ------------------------------------------------------------ made-up names


def test_made_up_names_leave_no_log_rows_and_no_metric_series(server, http, client,
                                                              unique_name):
    made_up = unique_name
    for _ in range(3):
        assert http.post(f"/v1/{made_up}", content=b"{oops", headers=JSON).status_code == 400
        assert http.post(f"/v1/{made_up}", content=b"{}",
                         headers={"content-type": "text/plain"}).status_code == 415
        assert http.post(f"/v1/{made_up}", json={"data": 1}).status_code == 404
        assert http.post(f"/v1/{made_up}/latest", json={"x": 1}).status_code in (400, 404)
    assert made_up not in http.get("/metrics").text
    assert server.log().count(made_up) <= 1
    # were there rows, the deployment made under that name now would show them
    client.deploy(echo, made_up)
    with server.admin() as admin:
        rows = admin.get(f"/api/deployments/{made_up}/logs").json()["requests"]
    assert rows == []


def test_an_unknown_alias_is_404_without_listing_the_aliases(http, client, unique_name):
    client.deploy(echo, unique_name)
    err = error_of(http.post(f"/v1/{unique_name}/nosuch", json={"data": 1}), 404, "not_found")
    assert "'nosuch'" in err["message"] and unique_name in err["message"]
    assert "latest" not in err["message"] and "production" not in err["message"]


# ------------------------------------------------------------ end-to-end timeouts


def slow(x):
    import time as _t

    _t.sleep(0.25)
    return x


def test_a_request_is_answered_within_its_timeout_when_workers_are_busy(server, client,
                                                                       unique_name):
    import asyncio
    import time

    client.deploy(slow, unique_name, workers=1, timeout=2)

    async def one(h: httpx.AsyncClient, i: int) -> tuple[int, float, str]:
        t0 = time.perf_counter()
        r = await h.post(f"/v1/{unique_name}", json={"data": i})
        return r.status_code, time.perf_counter() - t0, r.text

    async def run() -> list[tuple[int, float, str]]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as h:
            return list(await asyncio.gather(*(one(h, i) for i in range(40))))

    results = asyncio.run(run())
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 503, 504}, [t for s, _, t in results if s >= 500][:3]
    assert 200 in statuses and 503 in statuses
    assert statuses.count(504) <= 2  # only what was running when its time ran out
    slowest = max(t for _, t, _ in results)
    assert slowest < 2 + 1.0, slowest  # the timeout, plus the client's own overhead
    busy = next(t for s, _, t in results if s == 503)
    assert "stayed busy" in busy and "unavailable" in busy
    # the worker was not replaced for being busy, and it serves at once again
    assert client.predict(unique_name, 7) == 7


# ------------------------------------------------------------ the SQLite write lock


@pytest.fixture()
def own_server(tmp_path) -> Iterator[Any]:
    from tests.conftest import Server

    srv = Server(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()


def test_another_process_holding_the_sqlite_write_lock_does_not_freeze_the_server(own_server):
    import sqlite3
    import time

    srv = own_server
    with srv.client() as c:
        c.deploy(echo, "held")
    with srv.http() as h:
        assert h.post("/v1/held", json={"data": 0}).status_code == 200
        locker = sqlite3.connect(srv.data_dir / "champion.db", timeout=0, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # the write lock, as another process would hold it
        try:
            worst = 0.0
            t_end = time.monotonic() + 3
            n = 0
            while time.monotonic() < t_end:
                t0 = time.perf_counter()
                assert h.get("/healthz", timeout=5).status_code == 200
                assert h.post("/v1/held", json={"data": n}, timeout=5).json()["data"] == n
                worst = max(worst, time.perf_counter() - t0)
                n += 1
                time.sleep(0.05)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert worst < 1.0, worst
        # once the lock is free, what was served is in the request log
        deadline = time.monotonic() + 40
        with srv.admin() as admin:
            while time.monotonic() < deadline:
                rows = admin.get("/api/deployments/held/logs?limit=1000").json()["requests"]
                if len(rows) >= n + 1:
                    break
                time.sleep(0.2)
        assert len(rows) >= n + 1


# ------------------------------------------------------------ concurrent registry writes


def test_concurrent_first_deploys_of_one_name_all_succeed(server, unique_name):
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        with server.client() as c:
            return c.deploy(echo, unique_name, validate=False, progress=False).version

    with ThreadPoolExecutor(20) as pool:
        versions = list(pool.map(one, range(20)))
    assert sorted(versions) == list(range(1, 21))
    with server.admin() as admin:
        info = admin.get(f"/api/deployments/{unique_name}").json()
    assert info["aliases"]["latest"] == 20
    assert info["aliases"]["production"] == 1


def test_concurrent_alias_moves_record_the_true_previous_versions(server, client,
                                                                  unique_name):
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(4):
        client.deploy(echo, unique_name, validate=False, progress=False)
    targets = [1 + i % 4 for i in range(24)]

    def move(version: int) -> dict[str, Any]:
        with server.admin() as admin:
            resp = admin.put(f"/api/deployments/{unique_name}/aliases/beta",
                             json={"version": version})
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(move, targets))
    with server.admin() as admin:
        history = admin.get(f"/api/deployments/{unique_name}/history").json()["history"]
    moves = [h["detail"] for h in reversed(history)
             if h["action"] == "alias" and h["detail"].get("alias") == "beta"]
    assert moves, history
    before = None
    for move_ in moves:  # each move's previous is the version the one before it set
        assert move_["previous"] == before, moves
        before = move_["version"]


# ------------------------------------------------------------ what anonymous callers see


def test_a_load_failure_shows_no_server_paths(server, client, unique_name):
    import hashlib

    from tests.e2e.test_admin_input import deploy_mutated

    data = f"notes for {unique_name}".encode()
    digest = hashlib.sha256(data).hexdigest()

    def mutate(manifest: dict[str, Any], blobs: dict[str, bytes]) -> None:
        blobs[digest] = data
        manifest["files"]["notes.txt"] = digest

    deploy_mutated(client, echo, unique_name, mutate, validate=False)
    (server.data_dir / "artifacts" / digest[:2] / digest[2:]).unlink()
    with server.http() as h:
        resp = h.post(f"/v1/{unique_name}", json={"data": 1})
    err = error_of(resp, 503, "unavailable")
    assert "failed to load" in err["message"] and "FileNotFoundError" in err["message"]
    assert str(server.data_dir) not in resp.text and "artifacts/" not in resp.text


@pytest.mark.postgres
def test_with_the_database_gone_feedback_is_503_and_readyz_says_so_plainly(tmp_path):
    from tests.conftest import PgDatabase, Server, pg_available

    if not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    db = PgDatabase()
    srv = Server(tmp_path / "data", database_url=db.url).start()
    try:
        with srv.client() as c:
            c.deploy(echo, "fb")
        with srv.http() as h:
            rid = h.post("/v1/fb", json={"data": 1}).json()["request_id"]
            db.drop()  # every connection of the server goes with it
            resp = h.post("/v1/fb/feedback", json={"request_id": rid, "reward": 1})
            err = error_of(resp, 503, "unavailable")
            assert "store" in err["message"]
            ready = h.get("/readyz")
            assert ready.status_code == 503
            for text in (resp.text, ready.text):
                for leak in (db.name, "psycopg", "FATAL", "sqlalchemy", "5432"):
                    assert leak not in text, (leak, text)
    finally:
        srv.stop()
        db.drop()


def test_a_full_disk_is_507_no_space_left_and_readyz_says_so(tmp_path):
    from tests.conftest import Server

    flag = tmp_path / "disk-full"
    srv = Server(tmp_path / "data", extra_args=["--strategy-modules", "tests.e2e.faults"],
                 env={"CHAMPION_TEST_DISK_FULL": str(flag)}).start()
    try:
        with srv.client() as c:
            c.deploy(echo, "full")
        with srv.http() as h, srv.admin() as admin:
            rid = h.post("/v1/full", json={"data": 1}).json()["request_id"]
            assert h.get("/readyz").status_code == 200
            flag.touch()
            resp = h.post("/v1/full/feedback", json={"request_id": rid, "reward": 1})
            err = error_of(resp, 507, "insufficient_storage")
            assert "no space left" in err["message"]
            assert "disk is full" not in resp.text
            resp = admin.put("/api/artifacts/" + "ab" * 32, content=b"x")
            assert "no space left" in error_of(resp, 507)["message"]
            ready = h.get("/readyz")
            assert ready.status_code == 503 and "no space left" in ready.text
            flag.unlink()
            fine = h.post("/v1/full/feedback", json={"request_id": rid, "reward": 1})
            assert fine.status_code == 200 and fine.json()["accepted"] == 1
    finally:
        srv.stop()


# ------------------------------------------------------------ file permissions


LIMITS = {"t": 0.5}


def above(x):
    return x > LIMITS["t"]


def test_the_data_directory_is_the_servers_user_alone(tmp_path):
    import stat

    from tests.conftest import Server

    (tmp_path / "fresh").mkdir()
    srv = Server(tmp_path / "fresh" / "data", token="").start()
    srv.token = (srv.data_dir / "token").read_text().strip()
    try:
        with srv.client() as c:
            c.deploy(above, "perm")  # LIMITS is pickled: an artifact
            assert c.predict("perm", 1) is True
    finally:
        srv.stop()
    data = srv.data_dir

    def mode(p) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(data) == 0o700
    assert mode(data / "champion.db") == 0o600
    assert mode(data / "token") == 0o600
    assert mode(data / "artifacts") == 0o700
    blobs = [p for p in (data / "artifacts").rglob("*")]
    assert blobs
    for p in blobs:
        assert mode(p) == (0o700 if p.is_dir() else 0o600), p
    for p in data.glob("champion.db*"):
        assert mode(p) == 0o600, p


# ------------------------------------------------------------ feedback whose log row is lost


def doubled_score(x):
    return {"y": 2 * x}


def test_acknowledged_feedback_counts_in_reports_and_metrics_when_log_rows_are_lost(tmp_path):
    import signal
    import time

    from tests.conftest import Server

    # Nothing of the request log is written before the kill: only feedback is committed.
    srv = Server(tmp_path / "data", extra_args=["--log-flush-ms", "600000"]).start()
    try:
        with srv.client() as c:
            c.deploy(echo, "lost")
            c.deploy(doubled_score, "lost")
            exp = c.create_experiment("lost", "ab", {"control": "lost:1", "candidate": "lost:2"})
        acked = 0
        with srv.http() as h:
            for i in range(40):
                rid = h.post("/v1/lost", json={"data": i, "unit": f"u{i}"}).json()["request_id"]
                fb = h.post("/v1/lost/feedback", json={"request_id": rid, "reward": 1})
                acked += fb.json()["accepted"]
        assert acked == 40
        served = time.time()
        srv.stop(signal.SIGKILL)
        srv.start()
        with srv.client() as c:
            assert c.logs("lost", limit=100) == []  # the log rows are gone
            # feedback whose row is not in the log counts once its row cannot be in flight
            from champion.registry.reports import UNLOGGED_GRACE_S

            time.sleep(max(0.0, served + UNLOGGED_GRACE_S + 0.2 - time.time()))
            report = c.report(exp["id"])
            rewards = {a["name"]: a["metrics"]["reward"] for a in report["arms"]}
            assert sum(m["n"] for m in rewards.values()) == 40, rewards
            assert all(m["mean"] == 1.0 for m in rewards.values()), rewards
            data = c.metrics("lost", since="1h")
        # the endpoint's metrics count it too (by the version the id carries)
        counted = sum((s["totals"]["feedback"].get("reward") or {}).get("count", 0)
                      for s in data["versions"])
        assert counted == 40, data
    finally:
        srv.stop()
