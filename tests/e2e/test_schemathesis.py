"""schemathesis fuzzes the real server from its own /openapi.json, stateful where the document
links operations (deploy -> call the version -> send feedback; create -> revoke a token;
create -> read, change, report an experiment).

On SQLite and PostgreSQL. Bounded for CI (under a minute each): a fixed seed
(CHAMPION_FUZZ_SEED to change it), a few cases per operation (CHAMPION_FUZZ_EXAMPLES), one
worker. It fails on any 5xx that is not a
model's own documented failure (tests/e2e/st_hooks.py), any answer that breaks the document
(status, content type, body schema), a route that ignores its token, and any request that
takes longer than 30 s (a hang)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import PgDatabase, Server

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "fixtures" / "schemathesis.toml"
CHECKS = ("no_unexpected_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,ignored_auth")


def echo(x):
    return x


def broken(x):
    raise ValueError("this model always fails")


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(backend, tmp_path):
    db = PgDatabase() if backend == "postgres" else None
    srv = Server(tmp_path / "data", database_url=db.url if db else "",
                 extra_args=["--timeout", "10"]).start()
    report = tmp_path / "report.json"
    try:
        with srv.client() as c:
            c.deploy(echo, "echo")
            c.deploy(echo, "echo")
            c.deploy(broken, "broken", validate=False)
            exp = c.create_experiment("echo", "ab", {"control": 1, "candidate": 2})
        config = tmp_path / "schemathesis.toml"  # the fixture's, and the experiment's id
        config.write_text(CONFIG.read_text() + (
            f'\n[dictionaries.experiments]\nvalues = ["{exp["id"]}"]\n\n'
            '[parameters."path.id"]\ndictionary = "experiments"\nprobability = 0.5\n'))
        seed = os.environ.get("CHAMPION_FUZZ_SEED", "20261201")
        examples = os.environ.get("CHAMPION_FUZZ_EXAMPLES", "10")
        out = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
             f"{srv.url}/openapi.json", "-H", f"Authorization: Bearer {srv.token}",
             "--checks", CHECKS, "--max-examples", examples, "--seed", seed,
             "--workers", "1", "--request-timeout", "30", "--no-color",
             "--report", "json", "--report-json-path", str(report)],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,  # its cache goes there
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.st_hooks", "COLUMNS": "120",
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                             os.environ.get("PYTHONPATH")]))})
        summary = "".join(out.stdout[i:i + 6000] for i in (out.stdout.find("= ERRORS ="),
                                                           out.stdout.find("= FAILURES ="))
                          if i >= 0) + out.stdout[-2500:]
        print(summary)
        assert report.is_file(), out.stderr[-3000:]
        figures = json.loads(report.read_text())
        ops, cases = figures["operations"], figures["test_cases"]
        print(f"schemathesis: {ops['tested']} operations, {cases['generated']} cases, "
              f"{cases['unique_failures']} failures, seed {figures['seed']}")
        assert out.returncode == 0, summary
        assert figures["failures"] == [] and figures["errors"] == []
        assert ops["tested"] == ops["total"] >= 50
        assert figures["phases"]["stateful"]["status"] == "success"
        assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200  # no hang
        assert "unexpected error" not in srv.log(), srv.log()[-3000:]  # no bug of ours
    finally:
        srv.stop()
        if db is not None:
            db.drop()
