"""Scoped tokens (admin, deploy, infer, feedback), the audit log and rate limits, through the
real server, the client and the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from champion.errors import Forbidden, Unauthorized
from tests.conftest import Server


def echo(x):
    return x


def cli(server, *args, token=None, check=True):
    env = {**os.environ, "CHAMPION_URL": server.url, "CHAMPION_TOKEN": token or server.token,
           "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "champion", *args], capture_output=True,
                         text=True, env=env, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"champion {' '.join(args)} failed: {out.stderr}")
    return out


def forbidden(resp) -> str:
    assert resp.status_code == 403, resp.text
    err = resp.json()["error"]
    assert err["type"] == "forbidden"
    return str(err["message"])


@pytest.fixture()
def make_token(server, unique_name):
    def make(*scopes: str, rate_limit: float | None = None, suffix: str = "") -> str:
        with server.admin() as http:
            resp = http.post("/api/tokens", json={"name": unique_name + suffix,
                                                  "scopes": list(scopes),
                                                  "rate_limit": rate_limit})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["token"])
    return make


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[Server]:
    """A --require-auth server: inference and feedback need a token too."""
    srv = Server(tmp_path_factory.mktemp("guarded") / "data",
                 extra_args=["--require-auth", "--poll-interval", "0.2"]).start()
    with srv.client() as c:
        c.deploy(echo, "echo")
    yield srv
    srv.stop()


def create(srv: Server, name: str, *scopes: str, **extra) -> dict:
    with srv.admin() as http:
        resp = http.post("/api/tokens", json={"name": name, "scopes": list(scopes), **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_token_is_shown_once_and_only_its_hash_is_stored(server, unique_name):
    made = create(server, unique_name, "deploy")
    secret = made["token"]
    assert secret.startswith("cht_") and len(secret) > 40
    assert made["scopes"] == ["deploy"] and made["prefix"] == secret[:8]
    with server.admin() as http:
        listed = http.get("/api/tokens").json()["tokens"]
    mine = next(t for t in listed if t["name"] == unique_name)
    assert "token" not in mine and "hash" not in mine
    assert secret not in str(listed)
    if not server.database_url:
        db = (server.data_dir / "champion.db").read_bytes()
        for wal in server.data_dir.glob("champion.db-wal"):
            db += wal.read_bytes()
        assert secret.encode() not in db
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in db
    with server.admin() as http:
        again = http.post("/api/tokens", json={"name": unique_name, "scopes": ["infer"]})
    assert again.status_code == 409 and "not reused" in again.json()["error"]["message"]


def test_bad_token_requests_are_400_naming_the_field(server, unique_name):
    with server.admin() as http:
        for body, field in [({"name": unique_name, "scopes": ["root"]}, "scopes"),
                            ({"name": unique_name, "scopes": []}, "scopes"),
                            ({"name": "admin", "scopes": ["infer"]}, "name"),
                            ({"name": "../x", "scopes": ["infer"]}, "name"),
                            ({"name": unique_name, "scopes": ["infer"], "rate_limit": -1},
                             "rate_limit")]:
            resp = http.post("/api/tokens", json=body)
            assert resp.status_code == 400, (body, resp.text)
            assert resp.json()["error"]["field"] == field


def test_a_deploy_token_deploys_but_cannot_promote_or_manage_tokens(server, make_token,
                                                                    unique_name):
    from champion.client import Client

    secret = make_token("deploy")
    with Client(server.url, secret) as c:
        c.deploy(echo, unique_name)
        c.deploy(echo, unique_name)
        assert [v["number"] for v in c.versions(unique_name)] == [1, 2]
        with pytest.raises(Forbidden) as info:
            c.promote(unique_name, 2)
        assert "scope 'admin'" in info.value.message and unique_name in info.value.message
        with pytest.raises(Forbidden):
            c.tokens()
    with server.http(headers={"authorization": f"Bearer {secret}"}) as http:
        message = forbidden(http.delete(f"/api/deployments/{unique_name}"))
        assert "scopes: deploy" in message and "DELETE" in message


def test_infer_and_feedback_tokens_do_only_that_on_a_require_auth_server(guarded):
    infer = create(guarded, "reader", "infer")["token"]
    fb = create(guarded, "outcomes", "feedback")["token"]
    with guarded.http(headers={"authorization": f"Bearer {infer}"}) as http:
        resp = http.post("/v1/echo", json={"data": 3})
        assert resp.status_code == 200, resp.text
        rid = resp.json()["request_id"]
        assert "'feedback'" in forbidden(http.post("/v1/echo/feedback",
                                                   json={"request_id": rid, "reward": 1}))
        forbidden(http.get("/api/deployments"))
    with guarded.http(headers={"authorization": f"Bearer {fb}"}) as http:
        resp = http.post("/v1/echo/feedback", json={"request_id": rid, "reward": 1})
        assert resp.status_code == 200 and resp.json()["accepted"] == 1
        assert "'infer'" in forbidden(http.post("/v1/echo", json={"data": 3}))
    with guarded.http() as http:
        assert http.post("/v1/echo", json={"data": 3}).status_code == 401


def test_a_revoked_token_is_refused_from_then_on(guarded):
    secret = create(guarded, "temporary", "infer")["token"]
    with guarded.http(headers={"authorization": f"Bearer {secret}"}) as http:
        assert http.post("/v1/echo", json={"data": 1}).status_code == 200
        out = cli(guarded, "tokens", "revoke", "temporary")
        assert "revoked" in out.stderr
        resp = http.post("/v1/echo", json={"data": 1})
        assert resp.status_code == 401 and "not valid" in resp.json()["error"]["message"]
    with guarded.admin() as http:
        assert http.delete("/api/tokens/temporary").status_code == 404
        names = [t["name"] for t in http.get("/api/tokens").json()["tokens"]]
        assert "temporary" not in names
        everyone = http.get("/api/tokens", params={"revoked": "1"}).json()["tokens"]
        assert next(t for t in everyone if t["name"] == "temporary")["revoked_at"]


def test_cli_creates_lists_and_revokes_tokens(server, unique_name):
    out = cli(server, "tokens", "create", unique_name, "--scope", "infer", "--scope",
              "feedback", "--rate-limit", "5")
    secret = out.stdout.strip()
    assert secret.startswith("cht_") and "shown once" in out.stderr
    listing = cli(server, "tokens", "list").stdout
    assert unique_name in listing and "infer,feedback" in listing and "5/s" in listing
    assert secret not in listing
    with pytest.raises(AssertionError, match="scope 'admin'"):
        cli(server, "tokens", "list", token=secret)
    cli(server, "tokens", "revoke", unique_name)
    assert unique_name not in cli(server, "tokens", "list").stdout
    assert unique_name in cli(server, "tokens", "list", "--all").stdout
    for args in (["tokens", "--help"], ["tokens", "create", "--help"],
                 ["tokens", "list", "--help"], ["tokens", "revoke", "--help"],
                 ["audit", "--help"]):
        assert "Usage:" in cli(server, *args).stdout


def test_every_admin_action_is_in_the_audit_log_with_the_tokens_name(server, make_token,
                                                                      unique_name):
    from champion.client import Client

    secret = make_token("deploy", suffix="-ci")
    with Client(server.url, secret) as c:
        c.deploy(echo, unique_name)
        c.deploy(echo, unique_name)
        with pytest.raises(Forbidden):
            c.promote(unique_name, 2)
    with server.client() as admin:
        admin.promote(unique_name, 2)
        admin.set_alias(unique_name, "stable", 1)
        rows = admin.audit(limit=1000)
    mine = [r for r in rows if r["deployment"] == unique_name or
            r["token"] == unique_name + "-ci"]
    seen = {(r["token"], r["method"], r["path"], r["status"]) for r in mine}
    assert (unique_name + "-ci", "POST", f"/api/deployments/{unique_name}/versions",
            201) in seen
    assert (unique_name + "-ci", "POST", f"/api/deployments/{unique_name}/promote",
            403) in seen
    assert ("admin", "POST", f"/api/deployments/{unique_name}/promote", 200) in seen
    assert ("admin", "PUT", f"/api/deployments/{unique_name}/aliases/stable", 200) in seen
    assert ("admin", "POST", "/api/tokens", 201) in {
        (r["token"], r["method"], r["path"], r["status"]) for r in rows}
    # the registry's own history names the token too
    with server.client() as admin:
        history = admin.history(unique_name)
    actors = {h["actor"] for h in history if h["action"] == "deploy"}
    assert len(actors) == 1 and actors.pop().startswith(unique_name + "-ci")
    out = cli(server, "audit", "--token-name", unique_name + "-ci", "--limit", "10").stdout
    assert f"POST /api/deployments/{unique_name}/versions" in out and "403" in out


def test_anonymous_callers_are_not_written_to_the_audit_log(server, unique_name):
    with server.http() as http:
        assert http.post(f"/api/deployments/{unique_name}/promote",
                         json={"version": 1}).status_code == 401
    with server.client() as admin:
        rows = admin.audit(limit=200)
    assert not [r for r in rows if unique_name in r["path"]]


def test_a_token_over_its_rate_limit_gets_429_with_retry_after(server, make_token,
                                                               unique_name):
    secret = make_token("deploy", rate_limit=1)
    with server.http(headers={"authorization": f"Bearer {secret}"}) as http:
        codes = [http.get("/api/deployments") for _ in range(3)]
    assert codes[0].status_code == 200
    limited = codes[-1]
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    err = limited.json()["error"]
    assert err["type"] == "rate_limited" and unique_name in err["message"]
    time.sleep(1.1)
    with server.http(headers={"authorization": f"Bearer {secret}"}) as http:
        assert http.get("/api/deployments").status_code == 200
    with server.admin() as http:  # the admin token is not limited
        assert all(http.get("/api/deployments").status_code == 200 for _ in range(5))


def test_anonymous_inference_is_limited_per_address(tmp_path):
    srv = Server(tmp_path / "data", extra_args=["--anonymous-rate-limit", "2"]).start()
    try:
        with srv.client() as c:
            c.deploy(echo, "echo")
        with srv.http() as http:
            codes = [http.post("/v1/echo", json={"data": 1}).status_code for _ in range(6)]
            assert codes[:2] == [200, 200] and 429 in codes
            resp = http.post("/v1/echo/feedback", json={"request_id": "x", "reward": 1})
            assert resp.status_code == 429 and resp.headers["retry-after"]
            assert "request_id" in resp.json()["error"] or resp.json()["error"]["message"]
        with srv.admin() as http:  # a token is not an anonymous caller
            assert http.post("/v1/echo", json={"data": 1}).status_code == 200
    finally:
        srv.stop()


def test_an_unknown_token_on_an_open_route_is_still_anonymous(server, unique_name):
    with server.client() as c:
        c.deploy(echo, unique_name)
    with server.http(headers={"authorization": "some-modelbit-key"}) as http:
        assert http.post(f"/v1/{unique_name}", json={"data": 1}).status_code == 200
    with pytest.raises(Unauthorized):
        from champion.client import Client

        with Client(server.url, "cht_not-a-real-token") as bad:
            bad.deployments()


def test_a_dashboard_change_is_in_the_audit_log_as_dashboard(server, client, unique_name):
    import re

    client.deploy(echo, unique_name)
    client.deploy(echo, unique_name)
    with server.http(follow_redirects=False) as http:
        assert http.post("/ui/login", data={"token": server.token,
                                            "next": "/ui/"}).status_code == 303
        page = http.get(f"/ui/deployments/{unique_name}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        done = http.post(f"/ui/deployments/{unique_name}/promote",
                         data={"version": "2", "csrf": csrf, "confirmed": "yes"})
        assert done.status_code == 303
    rows = client.audit(limit=50, token="dashboard")
    assert ("POST", f"/api/deployments/{unique_name}/promote", 200) in {
        (r["method"], r["path"], r["status"]) for r in rows}
