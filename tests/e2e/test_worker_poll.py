"""The ``worker_poll_us`` setting reaches the workers through the real server: a version that
reports the limit its worker was given (runtime/worker.py reads it at start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Server


def poll_limit(x):  # type: ignore[no-untyped-def]
    import os

    return os.environ.get("CHAMPION_WORKER_POLL_US")


@pytest.mark.parametrize(("args", "expected"), [([], "1000"),
                                                 (["--worker-poll-us", "250"], "250"),
                                                 (["--worker-poll-us", "0"], "0")])
def test_each_worker_gets_the_servers_polling_limit(tmp_path: Path, args: list[str],
                                                    expected: str) -> None:
    srv = Server(tmp_path, extra_args=args)
    srv.start()
    try:
        with srv.client() as c:
            c.deploy(poll_limit, "limit")
        with srv.admin() as http:
            r = http.post("/v1/limit", json={"data": 1})
        assert r.status_code == 200, r.text
        assert r.json()["data"] == expected
    finally:
        srv.stop()


def test_a_limit_out_of_bounds_is_refused_at_start(tmp_path: Path) -> None:
    srv = Server(tmp_path, extra_args=["--worker-poll-us", "-1"])
    with pytest.raises(RuntimeError, match="worker-poll-us"):  # it exits, naming the flag
        srv.start()
    srv.stop()
