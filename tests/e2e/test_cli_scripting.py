"""What the docs' shell snippets rely on, through the real CLI and server: ids a script can
capture (``predict --id``, ``experiment create -q``, ``experiment list -q``), and a start-up
that does not pay for the statistics."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.test_first_hour import cli


def test_predict_id_and_experiment_list_quiet_print_ids_alone(server, client, unique_name,
                                                              tmp_path):
    def f(x):
        return x

    client.deploy(f, unique_name)
    client.deploy(f, unique_name)
    env = {"CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token}
    out = cli("experiment", "create", unique_name, "--variant", f"a={unique_name}:1",
              "--variant", f"b={unique_name}:2", "-q", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    exp_id = out.stdout.strip()
    listed = cli("experiment", "list", "--endpoint", unique_name, "--status", "running", "-q",
                 cwd=tmp_path, env=env)
    assert listed.stdout.split() == [exp_id]
    rid = cli("predict", unique_name, "-d", "1", "--unit", "u-1", "--id", cwd=tmp_path, env=env)
    assert rid.returncode == 0, rid.stderr
    fb = cli("feedback", unique_name, "-r", rid.stdout.strip(), "--reward", "1", cwd=tmp_path,
             env=env)
    assert fb.returncode == 0, fb.stderr
    client.stop_experiment(exp_id)


def test_the_cli_starts_without_importing_scipy():
    code = ("import sys, champion.main; from click.testing import CliRunner; "
            "CliRunner().invoke(champion.main.main, ['experiment', 'list', '--help']); "
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_an_error_stays_one_line_at_any_width_and_is_not_read_as_markup(tmp_path):
    from tests.conftest import free_port

    port = free_port()
    out = cli("deployments", "--url", f"127.0.0.1:{port}", "--token", "x", cwd=tmp_path,
              columns=40)
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    out = cli("predict", "x", "-d", "@[oops].json", cwd=tmp_path, columns=40)
    assert out.returncode == 1 and "cannot read [oops].json" in out.stderr, out.stderr
