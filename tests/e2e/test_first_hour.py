"""What a newcomer meets first, through the real CLI and server: finding the token, one-line
errors without tracebacks, an address that answers nothing, a busy port, tables that fit."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import Server, free_port


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 200,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("CHAMPION_URL", "CHAMPION_TOKEN", "CHAMPION_HOME")}
    full = {**base, "COLUMNS": str(columns), "CHAMPION_CONFIG": str(cwd / "config.json"),
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "champion", *args], capture_output=True,
                          text=True, env=full, timeout=120, cwd=cwd, input=stdin)


def one_clear_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "click" not in out.stderr, out.stderr
    return out.stderr


def test_a_401_says_how_to_give_the_token(server, tmp_path):
    err = one_clear_line(cli("deployments", "--url", server.url, cwd=tmp_path))
    for hint in ("--token", "CHAMPION_TOKEN", "CHAMPION_HOME", "champion login"):
        assert hint in err, err
    assert "(401)" in err


def test_connect_warns_when_it_finds_no_token(server, tmp_path, monkeypatch):
    import champion

    for var in ("CHAMPION_TOKEN", "CHAMPION_HOME", "CHAMPION_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHAMPION_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="no admin token found"):
        champion.connect(server.url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        champion.connect(server.url, token=server.token)


def test_login_saves_url_and_token_for_the_cli_and_the_client(server, tmp_path, monkeypatch):
    host_port = server.url.removeprefix("http://")
    out = cli("login", host_port, "--token", server.token, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    saved = tmp_path / "config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["default"] == server.url
    out = cli("deployments", "--json", cwd=tmp_path)  # neither --url nor --token
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), list)
    from champion.client import Client

    monkeypatch.delenv("CHAMPION_TOKEN", raising=False)
    monkeypatch.delenv("CHAMPION_URL", raising=False)
    monkeypatch.setenv("CHAMPION_CONFIG", str(saved))
    with Client() as c:
        assert c.url == server.url and c.token_source == "login"
        c.deployments()
    bad = cli("login", host_port, "--token", "wrong", cwd=tmp_path / ".." )
    assert bad.returncode == 1 and "not valid" in bad.stderr
    assert cli("logout", cwd=tmp_path).returncode == 0
    assert "servers" in json.loads(saved.read_text())
    assert server.url not in json.loads(saved.read_text())["servers"]


def test_an_address_that_answers_nothing_is_not_a_503(tmp_path):
    port = free_port()
    err = one_clear_line(cli("deployments", "--url", f"127.0.0.1:{port}", "--token", "x",
                             cwd=tmp_path))
    assert f"could not reach a champion server at http://127.0.0.1:{port}" in err
    assert "champion serve" in err and "(503)" not in err


def test_cli_errors_are_one_line_with_the_users_own_frames(server, tmp_path):
    env = {"CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token}
    err = one_clear_line(cli("predict", "anything", "-d", "@missing.json", cwd=tmp_path,
                             env=env))
    assert "missing.json" in err
    (tmp_path / "broken.py").write_text("def f(x)\n    return x\n")
    err = one_clear_line(cli("deploy", "broken.py:f", cwd=tmp_path, env=env))
    assert "broken.py:1: SyntaxError" in err
    (tmp_path / "raises.py").write_text("def helper():\n    return 1 / 0\n\nhelper()\n")
    err = one_clear_line(cli("deploy", "raises.py:helper", cwd=tmp_path, env=env))
    assert "raises.py raised ZeroDivisionError" in err
    assert "raises.py:2 in helper: return 1 / 0" in err and "runpy" not in err


def test_serve_on_a_busy_port_says_so_before_anything_else(server, tmp_path):
    port = server.port  # the session's server listens there
    out = cli("serve", "--port", str(port), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    err = one_clear_line(out)
    assert f"cannot listen on 127.0.0.1:{port}" in err and "serving on" not in err
    assert "admin token" not in out.stdout + err
    assert not (tmp_path / "d" / "token").exists()


def test_a_shell_defined_function_warns_that_its_source_is_lost(server, tmp_path):
    ns: dict[str, object] = {}
    exec(compile("def triple(x):\n    return 3 * x\n", "<stdin>", "exec"), ns)
    with server.client() as c:
        v = c.deploy(ns["triple"], f"shell{free_port()}")
        assert any("could not be read" in w for w in v.warnings)
        assert c.predict(v.deployment, 2) == 6
    env = {"CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token}
    out = cli("show", v.deployment, cwd=tmp_path, env=env)
    assert out.returncode == 0 and "pickled by value" in out.stderr


def test_listings_fit_80_columns_and_all_speak_json(server, client, unique_name, tmp_path):
    def f(x):
        return x

    client.deploy(f, unique_name)
    client.deploy(f, unique_name)
    e = client.create_experiment(unique_name, "ab", {"control": 1, "candidate": 2})
    env = {"CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token}
    for args in (["deployments"], ["versions", unique_name], ["history", unique_name],
                 ["experiment", "list", "--endpoint", unique_name],
                 ["metrics", unique_name], ["experiment", "report", e["id"]]):
        out = cli(*args, cwd=tmp_path, env=env, columns=80)
        assert out.returncode == 0, out.stderr
        assert "…" not in out.stdout, (args, out.stdout)
        assert all(len(line) <= 80 for line in out.stdout.splitlines()), (args, out.stdout)
        if args[0] != "experiment" or args[1] == "list":
            data = cli(*args, "--json", cwd=tmp_path, env=env)
            assert data.returncode == 0 and json.loads(data.stdout) is not None, args
    out = cli("experiment", "create", unique_name, "--variant", "a=1", "--variant", "b=2",
              cwd=tmp_path, env=env)
    assert out.returncode == 1 and e["id"] in out.stderr  # the conflict names it
    client.stop_experiment(e["id"])


def test_a_second_server_start_with_a_busy_port_keeps_the_first_one_serving(tmp_path):
    srv = Server(tmp_path / "a").start()
    try:
        out = cli("serve", "--port", str(srv.port), "--data-dir", str(tmp_path / "b"),
                  cwd=tmp_path)
        assert out.returncode == 1
        with srv.http() as h:
            assert h.get("/healthz").status_code == 200
    finally:
        srv.stop()
