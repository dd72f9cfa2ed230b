"""``champion backup`` while the server runs and takes traffic; ``champion restore`` into a
new data directory; a server started on it serves the same versions and feedback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import httpx

from tests.conftest import Server

FACTOR = {"times": 2}  # a value the deploy pickles: an artifact file


def double(x):
    return FACTOR["times"] * x


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "champion", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_backup_of_a_running_server_restores_and_serves(tmp_path):
    data = tmp_path / "data"
    srv = Server(data, token="").start()  # a generated token, kept in DATA_DIR/token
    srv.token = (data / "token").read_text().strip()
    stop = threading.Event()
    calls = {"ok": 0, "bad": 0}

    def traffic():
        with srv.http() as http:
            while not stop.is_set():
                resp = http.post("/v1/double", json={"data": 1})
                calls["ok" if resp.status_code == 200 else "bad"] += 1

    try:
        with srv.client() as c:
            c.deploy(double, "double")
            c.deploy(double, "double")
            c.promote("double", 1)
            rid = c.get_inference("double", 4)["request_id"]
            c.feedback("double", rid, reward=1)
        loader = threading.Thread(target=traffic)
        loader.start()
        try:
            out = run("backup", str(tmp_path / "backup"), "--data-dir", str(data))
        finally:
            stop.set()
            loader.join()
        assert out.returncode == 0, out.stderr
        assert "1 deployments, 2 versions" in out.stderr
        assert "0 artifact files" not in out.stderr
        assert calls["ok"] > 0 and calls["bad"] == 0  # the server kept answering
        with srv.http() as http:
            assert http.post("/v1/double", json={"data": 5}).json()["data"] == 10
    finally:
        srv.stop()

    backup = tmp_path / "backup"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert stat.S_IMODE((backup / "champion.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((backup / "token").stat().st_mode) == 0o600

    restored = tmp_path / "restored"
    out = run("restore", str(backup), "--data-dir", str(restored))
    assert out.returncode == 0, out.stderr
    again = run("restore", str(backup), "--data-dir", str(restored))
    assert again.returncode == 1 and "--force" in again.stderr

    srv2 = Server(restored, token="").start()
    srv2.token = (restored / "token").read_text().strip()
    try:
        assert srv2.token == srv.token  # the same admin token
        with srv2.client() as c:
            assert [v["number"] for v in c.versions("double")] == [1, 2]
            assert c.deployment("double")["aliases"]["production"] == 1
            assert c.predict("double", 21) == 42
            assert c.predict("double", 3, version=2) == 6
            # the request-id signing secret came along: feedback for an old request counts
            assert c.feedback("double", rid, metric="revenue", value=2.5)["accepted"] == 1
            assert c.feedback("double", rid, reward=1)["duplicates"] == 1
    finally:
        srv2.stop()


def test_backup_refuses_what_it_cannot_copy(tmp_path):
    out = run("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path / "nothing"))
    assert out.returncode == 1 and "not a champion data directory" in out.stderr
    out = run("backup", str(tmp_path / "b"), env={
        "CHAMPION_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/x"})
    assert out.returncode == 1 and "pg_dump" in out.stderr
    for name in ("backup", "restore"):
        assert f"champion {name} [OPTIONS] DIRECTORY" in run(name, "--help").stdout


def test_a_backup_directory_is_a_data_directory(tmp_path):
    data = tmp_path / "data"
    srv = Server(data).start()
    try:
        with srv.client() as c:
            c.deploy(double, "double")
        assert run("backup", str(tmp_path / "b"), "--data-dir", str(data)).returncode == 0
    finally:
        srv.stop()
    srv = Server(tmp_path / "b").start()
    try:
        with httpx.Client(base_url=srv.url) as http:
            assert http.post("/v1/double", json={"data": 2}).json()["data"] == 4
    finally:
        srv.stop()
