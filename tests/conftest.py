"""Shared fixtures: a real ``champion serve`` on a loopback port, per store backend.

Set CHAMPION_TEST_BACKENDS=sqlite to skip PostgreSQL (it is on by default and expected at
127.0.0.1:5432 with trust auth; tests are skipped with a clear reason when it is down).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

PG_ADMIN_URL = os.environ.get("CHAMPION_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("CHAMPION_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


class PgDatabase:
    """A throwaway PostgreSQL database."""

    def __init__(self) -> None:
        import sqlalchemy as sa

        self.name = f"champion_test_{uuid.uuid4().hex[:10]}"
        self._admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name

    def drop(self) -> None:
        import sqlalchemy as sa

        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


class Server:
    """``champion serve`` in its own process, on a free loopback port."""

    def __init__(self, data_dir: Path, *, database_url: str = "", token: str = "test-token",
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.token = token
        self.extra_args = extra_args or []
        self.extra_env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.port = free_port()
        env = {**os.environ, **self.extra_env}
        env.pop("CHAMPION_DATABASE_URL", None)
        if self.database_url:
            env["CHAMPION_DATABASE_URL"] = self.database_url
        if self.token:
            env["CHAMPION_TOKEN"] = self.token
        else:
            env.pop("CHAMPION_TOKEN", None)
        args = [sys.executable, "-m", "champion", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir), *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        RUNNING.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = 15) -> None:
        RUNNING.discard(self)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: Any) -> Any:
        from champion.client import Client

        return Client(self.url, self.token, **kwargs)

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def admin(self) -> httpx.Client:
        return self.http(headers={"authorization": f"Bearer {self.token}"})


# The servers running now, so that a failing test's report carries what they logged during it.
RUNNING: set[Server] = set()
_LOG_START = pytest.StashKey[dict[Path, int]]()
_LOG_TAIL = 6000


def _log_sizes() -> dict[Path, int]:
    return {s.log_path: s.log_path.stat().st_size for s in RUNNING if s.log_path.exists()}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_START] = _log_sizes()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    started = item.stash.get(_LOG_START, {})
    for path in sorted({*started, *_log_sizes()}):
        with contextlib.suppress(OSError), open(path, "rb") as f:
            f.seek(started.get(path, 0))
            text = f.read().decode(errors="replace")
            if text.strip():
                report.sections.append((f"server log during the test: {path}",
                                        text[-_LOG_TAIL:]))


@pytest.fixture(scope="session", params=[
    pytest.param(b, marks=pytest.mark.postgres) if b == "postgres" else b for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres" and not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    yield request.param


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per backend for the whole session."""
    db = PgDatabase() if backend == "postgres" else None
    srv = Server(
        tmp_path_factory.mktemp(f"data-{backend}"),
        database_url=db.url if db else "",
        extra_args=["--max-body-bytes", str(1024 * 1024), "--timeout", "20"],
    )
    srv.start()
    yield srv
    srv.stop()
    if db is not None:
        db.drop()


@pytest.fixture()
def client(server: Server) -> Iterator[Any]:
    c = server.client()
    yield c
    c.close()


@pytest.fixture()
def unique_name() -> str:
    return "t" + uuid.uuid4().hex[:10]


# ------------------------------------------------------------------ the Ray runtime


class RayCluster:
    """The local Ray instance of tests/e2e/ray_head.py."""

    def __init__(self, log_path: Path) -> None:
        import secrets

        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Ray's token authentication, with a token of the session's own (not ~/.ray's):
        # every process that joins the instance (champion serve) gets it in its environment.
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.ray_head"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, **self.env})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise RuntimeError(log_path.read_text(errors="replace")[-2000:])
        self.address = json.loads(line)["address"]

    def apps(self) -> list[str]:
        """The Serve applications on the cluster."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"apps\n")
        self.proc.stdin.flush()
        return list(json.loads(self.proc.stdout.readline())["apps"])

    def replica_calls(self, app: str) -> int | str:
        """The calls one replica of ``app`` has taken so far (a Ray error's name instead,
        when the replica did not answer within 10 s)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"calls {app}\n".encode())
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["calls"] if "calls" in answer else str(answer["error"])

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """One local Ray instance for the session; skipped (with the reason) where Ray cannot
    start. CI (.ci/run) installs ray[serve] through the dev extra and sets
    CHAMPION_TEST_REQUIRE_RAY=1: there a Ray that cannot start fails the tests instead."""
    import importlib.util

    give_up = pytest.fail if os.environ.get("CHAMPION_TEST_REQUIRE_RAY") == "1" else pytest.skip
    if importlib.util.find_spec("ray") is None:
        give_up("Ray is not installed (pip install 'champion[ray]')")
    log_path = tmp_path_factory.mktemp("ray") / "ray-head.log"
    try:
        cluster = RayCluster(log_path)
    except Exception as exc:
        give_up(f"a local Ray instance could not start: {str(exc)[-500:]}")
    yield cluster
    cluster.stop()


RUNTIMES = ["local", pytest.param("ray", marks=pytest.mark.ray)]


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per runtime (SQLite store), for the runtime contract suite."""
    args = ["--max-body-bytes", str(1024 * 1024), "--timeout", "20"]
    if request.param == "ray":
        cluster = request.getfixturevalue("ray_cluster")
        # Small CPU reservations: the 2-CPU test instance holds many one-worker versions.
        args += ["--runtime", "ray", "--ray-address", cluster.address,
                 "--ray-replica-cpus", "0.05"]
    env: dict[str, str] = {}
    if request.param == "ray":
        env = request.getfixturevalue("ray_cluster").env
    srv = Server(tmp_path_factory.mktemp(f"data-{request.param}"), extra_args=args, env=env)
    srv.runtime = request.param  # type: ignore[attr-defined]
    srv.start(timeout=120)
    yield srv
    srv.stop()
