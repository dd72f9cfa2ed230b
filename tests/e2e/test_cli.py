"""The ``champion`` command against the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest


def run(server, *args, check=True, cwd=None):
    env = {**os.environ, "CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token,
           "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "champion", *args], capture_output=True,
                         text=True, env=env, timeout=120, cwd=cwd)
    if check and out.returncode != 0:
        raise AssertionError(f"champion {' '.join(args)} failed: {out.stderr}")
    return out


@pytest.fixture()
def project(tmp_path):
    """A git-folder style project: a model file importing a local module."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "features.py").write_text("def prepare(x):\n    return [float(v) for v in x]\n")
    (root / "model.py").write_text(textwrap.dedent("""
        from features import prepare

        WEIGHTS = [1.0, 2.0, 3.0]

        def score(x):
            return sum(w * v for w, v in zip(WEIGHTS, prepare(x)))
    """))
    return root


def test_deploy_from_a_folder_then_manage_it_from_the_cli(server, project, unique_name):
    out = run(server, "deploy", "model.py:score", "--name", unique_name, cwd=project)
    assert f"{unique_name}:1" in out.stdout and "production" in out.stdout
    run(server, "deploy", str(project / "model.py") + ":score", "--name", unique_name)

    out = run(server, "predict", unique_name, "--data", "[1, 1, 1]")
    assert json.loads(out.stdout) == 6.0
    out = run(server, "predict", unique_name, "--data", "[1, 0, 0]", "--version", "2",
              "--full")
    assert json.loads(out.stdout)["variant"] == f"{unique_name}:2"

    assert unique_name in run(server, "deployments").stdout
    versions = run(server, "versions", unique_name).stdout
    assert "production" in versions and "latest" in versions

    out = run(server, "promote", unique_name, "2")
    assert "1 -> 2" in out.stdout
    out = run(server, "rollback", unique_name)
    assert "2 -> 1" in out.stdout
    run(server, "alias", unique_name, "staging", "2")
    assert json.loads(run(server, "predict", unique_name, "-d", "[0,0,1]", "-v",
                          "staging").stdout) == 3.0

    shown = run(server, "show", unique_name, "1").stdout
    assert "def score(x):" in shown and "features.py" in shown

    history = run(server, "history", unique_name).stdout
    assert "deploy" in history and "alias" in history

    logs = run(server, "logs", unique_name, "--json", "--limit", "5")
    assert logs.stdout.strip(), "the request log has entries"

    run(server, "delete", unique_name, "--yes")
    gone = run(server, "predict", unique_name, "--data", "1", check=False)
    assert gone.returncode == 1
    assert "no deployment named" in gone.stderr and "Traceback" not in gone.stderr


def test_cli_errors_are_one_line_without_traceback(server):
    out = run(server, "versions", "no-such-deployment", check=False)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error:")
    assert "Traceback" not in out.stderr
    bad = run(server, "predict", "x", "--data", "{not json", check=False)
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr


def test_cli_without_a_valid_token_says_so(server):
    env = {**os.environ, "CHAMPION_URL": server.url, "CHAMPION_TOKEN": "wrong"}
    out = subprocess.run([sys.executable, "-m", "champion", "deployments"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1 and "token" in out.stderr and "401" in out.stderr


def test_demo_runs_end_to_end(tmp_path):
    from tests.conftest import free_port

    port = free_port()
    out = subprocess.run(
        [sys.executable, "-m", "champion", "demo", "--port", str(port), "--requests", "20",
         "--no-serve"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "deployed churn:1" in out.stderr and "deployed churn:2" in out.stderr
    assert f"export CHAMPION_URL=http://127.0.0.1:{port} CHAMPION_TOKEN=demo-" in out.stdout
    assert "curl -s -X POST $CHAMPION_URL/v1/churn" in out.stdout
    for headline in ("champion metrics churn", "champion feedback churn",
                     "champion experiment create churn", "--strategy canary"):
        assert headline in out.stdout, headline
    assert f"Dashboard: http://127.0.0.1:{port}/ui/" in out.stdout
    assert f"http://127.0.0.1:{port}/ui/login?code=" in out.stdout


def test_feedback_metrics_and_log_export_from_the_cli(server, client, unique_name, tmp_path):
    def double(x):
        return 2 * x

    client.deploy(double, unique_name)
    rid = client.get_inference(unique_name, 2)["request_id"]
    out = run(server, "feedback", unique_name, "--request-id", rid, "--reward", "1")
    assert "stored" in out.stdout
    out = run(server, "feedback", unique_name, "-r", rid, "--reward", "1")
    assert "duplicate" in out.stdout
    items = tmp_path / "fb.jsonl"
    items.write_text(json.dumps({"request_id": rid, "label": 4}) + "\n"
                     + json.dumps({"reward": 1}) + "\n")
    out = run(server, "feedback", unique_name, "--file", str(items))
    assert "accepted 1" in out.stdout and "rejected 1" in out.stdout
    assert "item 1:" in out.stderr

    for _ in range(40):
        if client.logs(unique_name):
            break
        time.sleep(0.05)
    out = run(server, "metrics", unique_name, "--since", "1h")
    assert "100.0% (n=1)" in out.stdout  # the label 4 matches the output 4
    data = json.loads(run(server, "metrics", unique_name, "--json").stdout)
    assert data["versions"][0]["totals"]["feedback"]["reward"]["count"] == 1

    target = tmp_path / "log.parquet"
    run(server, "logs", unique_name, "--since", "1h", "--format", "parquet", "-o", str(target))
    import pyarrow.parquet as pq

    assert pq.read_table(target).num_rows == 1
    shown = run(server, "logs", unique_name).stdout
    assert rid in shown and "reward=1.0" in shown
