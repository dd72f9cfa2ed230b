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
