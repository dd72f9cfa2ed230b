"""The admin token: required by /api/, optional for inference, generated once when unset."""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Server


def echo(x):
    return x


@pytest.fixture()
def deployed(client, unique_name) -> str:
    client.deploy(echo, unique_name)
    return unique_name


@pytest.fixture()
def dedicated(tmp_path) -> Iterator[list[Server]]:
    """Servers a test starts itself (SQLite); all stopped at the end."""
    started: list[Server] = []
    yield started
    for srv in started:
        srv.stop()


def unauthorized(resp) -> str:
    assert resp.status_code == 401, resp.text
    err = resp.json()["error"]
    assert err["type"] == "unauthorized"
    return str(err["message"])


def test_admin_api_without_token_is_401_saying_how_to_authenticate(server):
    with server.http() as http:
        for method, path in [("GET", "/api/deployments"), ("GET", "/api/runtime"),
                             ("POST", "/api/deployments/x/versions"),
                             ("DELETE", "/api/deployments/x")]:
            message = unauthorized(http.request(method, path))
            assert "Authorization: Bearer" in message and "DATA_DIR/token" in message


def test_admin_api_with_wrong_token_is_401(server):
    with server.http(headers={"authorization": "Bearer not-the-token"}) as http:
        assert "not valid" in unauthorized(http.get("/api/deployments"))
    with server.http(headers={"x-champion-token": "not-the-token"}) as http:
        assert "not valid" in unauthorized(http.get("/api/deployments"))
    with server.http(headers={"authorization": "Basic dXNlcjpwdw=="}) as http:
        unauthorized(http.get("/api/deployments"))


def test_admin_api_accepts_the_token_as_bearer_or_header(server):
    with server.admin() as http:
        assert http.get("/api/deployments").status_code == 200
    with server.http(headers={"x-champion-token": server.token}) as http:
        assert http.get("/api/deployments").status_code == 200


def test_inference_is_open_by_default(server, deployed):
    with server.http() as http:
        resp = http.post(f"/v1/{deployed}", json={"data": "hi"})
    assert resp.status_code == 200 and resp.json()["data"] == "hi"


def test_require_auth_server_rejects_inference_without_the_token(tmp_path, dedicated):
    srv = Server(tmp_path / "data", extra_args=["--require-auth"]).start()
    dedicated.append(srv)
    with srv.client() as client:
        client.deploy(echo, "guarded")
    with srv.http() as http:
        assert "Bearer" in unauthorized(http.post("/v1/guarded", json={"data": 1}))
        bad = http.post("/v1/guarded", json={"data": 1},
                        headers={"authorization": "Bearer wrong"})
        assert "not valid" in unauthorized(bad)
    with srv.admin() as http:
        resp = http.post("/v1/guarded", json={"data": 1})
    assert resp.status_code == 200 and resp.json()["data"] == 1
    # Rejected calls are logged too, with their status.
    deadline = time.monotonic() + 2
    with srv.admin() as http:
        while True:
            rows = http.get("/api/deployments/guarded/logs").json()["requests"]
            if len(rows) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert sorted(r["status"] for r in rows) == [200, 401, 401]


def test_server_without_a_token_generates_one_prints_it_once_and_keeps_it(tmp_path, dedicated):
    data = tmp_path / "data"
    srv = Server(data, token="").start()
    dedicated.append(srv)
    token_file = data / "token"
    token = token_file.read_text().strip()
    assert re.fullmatch(r"chp_[A-Za-z0-9_-]{20,}", token)
    assert stat.S_IMODE(token_file.stat().st_mode) & 0o077 == 0
    assert srv.log().count(token) == 1
    assert "admin token" in srv.log()
    srv.token = token
    with srv.admin() as http:
        assert http.get("/api/deployments").status_code == 200
    with srv.http() as http:
        unauthorized(http.get("/api/deployments"))

    srv.stop()
    srv.start()
    assert token_file.read_text().strip() == token
    assert srv.log().count(token) == 1  # the log file spans both runs
    assert srv.log().count("admin token") == 1
    with srv.admin() as http:
        assert http.get("/api/deployments").status_code == 200


def test_token_from_the_environment_is_neither_stored_nor_printed(tmp_path, dedicated):
    data = tmp_path / "data"
    srv = Server(data, token="env-token-123").start()
    dedicated.append(srv)
    assert not (data / "token").exists()
    assert "env-token-123" not in srv.log()
    with srv.admin() as http:
        assert http.get("/api/deployments").status_code == 200
