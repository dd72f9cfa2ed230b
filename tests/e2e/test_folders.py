"""Deployments kept in git folders (Modelbit's layout): deploy, init, export, plan, apply."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from champion.capture.folder import read_folder
from champion.errors import DeployError

SOURCE = textwrap.dedent('''
    import modelbit, sys

    weights = modelbit.load_value("data/weights.pkl")  # dict

    with open("labels.txt") as f:
        LABELS = f.read().split()


    def label_of(score):
        return LABELS[int(score > weights["threshold"])]


    # main function
    def churn(a: float, b: float = 1.0) -> dict:
        score = weights["a"] * a + weights["b"] * b
        return {"score": score, "label": label_of(score)}
''')


def git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


@pytest.fixture()
def repo(tmp_path):
    """A git repository with deployments/churn in Modelbit's layout, committed."""
    root = tmp_path / "repo"
    folder = root / "deployments" / "churn"
    (folder / "data").mkdir(parents=True)
    (folder / "source.py").write_text(SOURCE)
    python = ".".join(map(str, sys.version_info[:2]))
    (folder / "metadata.yaml").write_text(textwrap.dedent(f'''
        owner: someone@example.com
        runtimeInfo:
          mainFunction: churn
          mainFunctionArgs:
          - a:float
          - b:float
          - return:dict
          pythonVersion: '{python}'
        schemaVersion: 2
    '''))
    (folder / "requirements.txt").write_text("")
    (folder / "labels.txt").write_text("stay leave\n")
    (folder / "data" / "weights.pkl").write_bytes(
        pickle.dumps({"a": 2.0, "b": 0.5, "threshold": 3.0}))
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "churn")
    return root


def test_a_folder_deploy_records_its_git_commit_and_whether_it_was_dirty(
        client, repo, unique_name):
    folder = repo / "deployments" / "churn"
    v = client.deploy_folder(folder, unique_name)
    assert v.version == 1 and v.status == "ready"
    assert client.predict(unique_name, [1.0, 0.0]) == {"score": 2.0, "label": "stay"}
    assert client.predict(unique_name, {"a": 2.0}) == {"score": 4.5, "label": "leave"}
    # Modelbit's batch rows, [id, a, b]:
    assert client.predict(unique_name, [[1, 1.0, 0.0], [2, 2.0, 1.0]]) == [
        [1, {"score": 2.0, "label": "stay"}], [2, {"score": 4.5, "label": "leave"}]]
    info = client.version(unique_name, 1)
    head = git(repo, "rev-parse", "HEAD")
    assert info["origin"]["commit"] == head
    assert info["origin"]["dirty"] is False
    assert info["origin"]["path"] == "deployments/churn"
    assert "def churn" in info["source"]

    (folder / "labels.txt").write_text("stays leaves\n")  # not committed
    v2 = client.deploy_folder(folder, unique_name)
    info = client.version(unique_name, v2.version)
    assert (info["origin"]["commit"], info["origin"]["dirty"]) == (head, True)
    assert client.predict(unique_name, [1.0, 0.0], version=2)["label"] == "stays"


COEFFICIENTS = np.array([0.5, -1.0, 2.0])


def scale(x):
    return np.asarray(x, dtype=float) * 2


def predict_linear(x, bias=0.0):
    return float(COEFFICIENTS @ scale(x)) + bias


def make_closure():
    offset = 0.25

    def predict_closure(x, bias=0.0):
        return float(COEFFICIENTS @ scale(x)) + bias + offset

    return predict_closure


@pytest.mark.parametrize("fn, files", [
    (predict_linear, ["data/COEFFICIENTS.pkl", "metadata.yaml", "requirements.txt",
                      "source.py"]),
    (make_closure(), ["data/predict_closure.pkl", "metadata.yaml", "requirements.txt",
                      "source.py"]),
], ids=["source", "pickled-function"])
def test_export_then_deploy_of_the_export_answers_the_same(client, unique_name, tmp_path, fn,
                                                           files):
    client.deploy(fn, unique_name)
    inputs = [{"x": [1, 2, 3]}, {"x": [0, 0, 1], "bias": 1.5}, [[1, [[1, 1, 1]]]],
              [[1, [1, 0, 0], 5.0], [2, [3, 2, 1], -1.0]]]
    before = [client.predict(unique_name, x) for x in inputs]

    out = client.export(unique_name, 1, tmp_path / "exported")
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert set(files) <= set(names)  # and the local modules a pickled function refers to
    source = (out / "source.py").read_text()
    assert "import modelbit" in source
    if fn is predict_linear:
        assert 'COEFFICIENTS = modelbit.load_value("data/COEFFICIENTS.pkl")' in source
        assert "def scale(x):" in source and "def predict_linear(x, bias=0.0):" in source
        assert "numpy==" in (out / "requirements.txt").read_text()

    v = client.deploy_folder(out, unique_name)
    assert v.version == 2
    assert [client.predict(unique_name, x, version=2) for x in inputs] == before

    again = client.export(unique_name, 2, tmp_path / "again")  # a folder version, out again
    assert (again / "source.py").read_text() == source


def test_a_folder_that_fits_no_layout_is_refused_clearly(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "source.py").write_text("def g(x):\n    return x\n")
    (tmp_path / "f" / "metadata.yaml").write_text("runtimeInfo:\n  mainFunction: h\n")
    with pytest.raises(DeployError, match="defines no function 'h'"):
        read_folder(tmp_path / "f")
    (tmp_path / "f" / "metadata.yaml").write_text("owner: x\n")
    with pytest.raises(DeployError, match=r"runtimeInfo\.mainFunction"):
        read_folder(tmp_path / "f")
    (tmp_path / "f" / "metadata.yaml").write_text("runtimeInfo:\n  mainFunction: g\n")
    (tmp_path / "f" / "data").mkdir()
    (tmp_path / "f" / "data" / "m.pkl").write_text("_: MBFileStub\ncontentHash: sha1:00\n")
    with pytest.raises(DeployError, match="Modelbit file stub"):
        read_folder(tmp_path / "f")


def run(server, *args, cwd=None):
    env = {**os.environ, "CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token,
           "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "champion.cli", *args], capture_output=True,
                         text=True, env=env, timeout=180, cwd=cwd)
    assert out.returncode == 0, f"champion {' '.join(args)} failed: {out.stderr}"
    return out


def test_init_deploy_plan_apply_and_export_from_the_cli(client, server, repo, unique_name,
                                                        tmp_path):
    out = run(server, "init", unique_name, cwd=repo)
    assert f"deployments/{unique_name}" in out.stdout
    folder = repo / "deployments" / unique_name
    assert sorted(p.name for p in folder.iterdir()) == [
        "data", "metadata.yaml", "requirements.txt", "source.py"]
    spec = repo / "experiments" / "ab.yaml"
    spec.parent.mkdir()
    spec.write_text(f"endpoint: {unique_name}\nname: hello-ab\nstrategy: ab\nvariants:\n"
                    f"  control: {unique_name}:1\n  candidate: {unique_name}:1\n")

    # plan: nothing deployed yet; the churn folder of the repo is planned too
    out = run(server, "plan", "-f", str(repo))
    assert f"+ deployments/{unique_name}: deployment {unique_name}: create" in out.stdout
    assert "experiments/ab.yaml: experiment" in out.stdout
    with pytest.raises(Exception, match="no deployment"):
        client.version(unique_name, 1)  # plan changed nothing

    run(server, "deploy", str(folder))
    assert client.predict(unique_name, "world") == "Hello, world!"
    out = run(server, "plan", "-f", str(folder))
    assert f"= {unique_name}: deployment {unique_name}: unchanged" in out.stdout

    source = folder / "source.py"
    source.write_text(source.read_text().replace("Hello", "Hi"))
    out = run(server, "plan", "-f", str(folder))
    assert "new version" in out.stdout and "source.py" in out.stdout and "dirty" in out.stdout
    out = run(server, "apply", "-f", str(repo / "deployments" / unique_name))
    assert f"deployed {unique_name}:2" in out.stderr + out.stdout
    assert client.predict(unique_name, "you", version=2) == "Hi, you!"

    out = run(server, "export", f"{unique_name}:2", str(tmp_path / "out"))
    assert (tmp_path / "out" / "source.py").read_text() == source.read_text()
