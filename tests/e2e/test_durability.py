"""The durability contract, tested by killing the server, and log retention."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from champion.store import Store
from tests.conftest import PgDatabase, Server

pytestmark = pytest.mark.slow  # seconds each: `pytest -m "not slow"` skips them


def echo(x):
    return x


@pytest.fixture()
def own_server(backend, tmp_path):
    """A server of the test's own, on the session's backend, that the test may kill."""
    made: list[Server] = []
    db = PgDatabase() if backend == "postgres" else None

    def make(*extra: str) -> Server:
        srv = Server(tmp_path / "data", database_url=db.url if db else "",
                     extra_args=list(extra))
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.stop()
    if db is not None:
        db.drop()


def test_sigkill_loses_no_acknowledged_feedback_and_at_most_a_flush_interval_of_requests(
        own_server):
    flush_ms = 100
    srv = own_server("--log-flush-ms", str(flush_ms))
    with srv.client() as c:
        c.deploy(echo, "d")
    acked_requests: list[tuple[str, float]] = []
    acked_feedback: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=srv.url, timeout=5) as http:
            while not stop.is_set():
                try:
                    r = http.post("/v1/d", json={"data": 1})
                    rid = r.json()["request_id"]
                    with lock:
                        acked_requests.append((rid, time.time()))
                    f = http.post("/v1/d/feedback", json={"request_id": rid, "reward": 1})
                    if f.status_code == 200:
                        with lock:
                            acked_feedback.append(rid)
                except (httpx.TransportError, ValueError, KeyError):
                    return

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    killed_at = time.time()
    srv.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked_feedback) > 50, "the load ran"

    store = Store.open(srv.data_dir, srv.database_url)
    try:
        stored_feedback = {r["request_id"] for r in store.feedback_rows("d", limit=100_000)}
        logged = {r["request_id"] for r in store.query_requests("d", limit=100_000)}
    finally:
        store.close()
    assert set(acked_feedback) <= stored_feedback
    lost = [(rid, at) for rid, at in acked_requests if rid not in logged]
    # Only events answered in the last flush interval (plus one write's time) may be lost.
    window = flush_ms / 1000 + 0.5
    assert all(at >= killed_at - window for _, at in lost), (
        f"{len(lost)} lost, oldest {killed_at - min(at for _, at in lost):.3f}s before the kill")
    assert len(lost) < len(acked_requests) / 2
    print(f"\nSIGKILL under load: {len(acked_feedback)} feedback acknowledged, all stored; "
          f"{len(acked_requests)} requests answered, {len(lost)} not yet logged (all within "
          f"{window:.2f} s of the kill)")


def test_sigterm_flushes_every_request_event(own_server):
    srv = own_server("--log-flush-ms", "5000")  # nothing is flushed by the timer in time
    with srv.client() as c:
        c.deploy(echo, "d")
        rids = [c.get_inference("d", i)["request_id"] for i in range(30)]
    srv.stop(signal.SIGTERM)
    store = Store.open(srv.data_dir, srv.database_url)
    try:
        logged = {r["request_id"] for r in store.query_requests("d", limit=1000)}
    finally:
        store.close()
    assert set(rids) <= logged


def test_retention_deletes_old_events_in_the_background(own_server):
    # 0.00003 days is 2.6 seconds.
    srv = own_server("--log-retention-days", "0.00003", "--retention-interval", "0.3")
    with srv.client() as c:
        c.deploy(echo, "d")
        old = c.get_inference("d", 1)["request_id"]
        c.feedback("d", old, reward=1)
        time.sleep(3.2)
        new = c.get_inference("d", 2)["request_id"]
        deadline = time.time() + 3
        ids: set[str] = set()
        while time.time() < deadline:
            ids = {r["request_id"] for r in c.logs("d", limit=100)}
            if new in ids and old not in ids:
                break
            time.sleep(0.1)
    assert new in ids and old not in ids
