"""Deploy, versions, aliases, promote, rollback, delete: through the real server."""

from __future__ import annotations

import numpy as np
import pytest

from champion.errors import BadRequest, Conflict, DeployError, NotFound

OFFSET = 10


def plus_offset(x):
    return x + OFFSET


def times_two(x):
    return x * 2


def test_first_deploy_creates_version_1_and_sets_production(client, unique_name):
    v = client.deploy(plus_offset, unique_name)
    assert (v.deployment, v.version, v.production) == (unique_name, 1, True)
    assert sorted(v.aliases) == ["latest", "production"]
    assert client.predict(unique_name, 5) == 15
    assert client.predict(unique_name, 5, version=1) == 15
    assert client.predict(unique_name, 5, version="latest") == 15


def test_later_deploys_are_new_versions_and_production_moves_only_on_promote(client, unique_name):
    client.deploy(plus_offset, unique_name)
    v2 = client.deploy(times_two, unique_name)
    assert (v2.version, v2.production) == (2, False)
    assert client.predict(unique_name, 5) == 15  # production still 1
    assert client.predict(unique_name, 5, version="latest") == 10
    assert client.predict(unique_name, 5, version=1) == 15
    client.promote(unique_name, 2)
    response = client.get_inference(unique_name, 5)
    assert response["data"] == 10
    assert response["variant"] == f"{unique_name}:2"
    assert [v["number"] for v in client.versions(unique_name)] == [1, 2]


def test_rollback_moves_production_back(client, unique_name):
    client.deploy(plus_offset, unique_name)
    client.deploy(times_two, unique_name)
    client.promote(unique_name, 2)
    r = client.rollback(unique_name)
    assert (r["previous"], r["production"]) == (2, 1)
    assert client.predict(unique_name, 1) == 11
    with pytest.raises(Conflict):
        client.rollback(unique_name, 1)


def test_custom_alias_can_be_set_moved_and_removed(client, unique_name):
    client.deploy(plus_offset, unique_name)
    client.deploy(times_two, unique_name)
    client.set_alias(unique_name, "staging", 2)
    assert client.predict(unique_name, 3, version="staging") == 6
    client.set_alias(unique_name, "staging", 1)
    assert client.predict(unique_name, 3, version="staging") == 13
    client.delete_alias(unique_name, "staging")
    with pytest.raises(NotFound, match="staging"):
        client.predict(unique_name, 3, version="staging")
    with pytest.raises(BadRequest, match="latest"):
        client.set_alias(unique_name, "latest", 1)
    with pytest.raises(NotFound, match="version 9"):
        client.set_alias(unique_name, "staging", 9)


def test_versions_are_immutable_snapshots(client, unique_name):
    global OFFSET
    client.deploy(plus_offset, unique_name)
    OFFSET = 100
    try:
        client.deploy(plus_offset, unique_name)
    finally:
        OFFSET = 10
    assert client.predict(unique_name, 1, version=1) == 11
    assert client.predict(unique_name, 1, version=2) == 101


def test_inspect_version_shows_source_packages_and_author(client, unique_name):
    weights = np.array([1.0, 2.0])

    def score(x):
        return float(np.dot(weights, x))

    client.deploy(score, unique_name)
    info = client.version(unique_name, 1)
    assert "def score(x):" in info["source"]
    assert "numpy" in info["packages"]
    assert info["created_by"]
    assert info["python_version"].count(".") == 2
    assert client.predict(unique_name, [1, 1]) == 3.0


def test_delete_removes_the_deployment(client, unique_name):
    client.deploy(plus_offset, unique_name)
    client.delete(unique_name)
    with pytest.raises(NotFound, match=unique_name):
        client.predict(unique_name, 1)
    assert unique_name not in [d["name"] for d in client.deployments()]
    # The name can be used again, and version numbers are never reused.
    assert client.deploy(times_two, unique_name).version == 2
    assert client.predict(unique_name, 4) == 8


def test_unpicklable_value_fails_the_deploy_naming_it(client, unique_name):
    import threading

    lock = threading.Lock()

    def uses_lock(x):
        with lock:
            return x

    with pytest.raises(DeployError, match="'lock'"):
        client.deploy(uses_lock, unique_name)


def test_package_missing_in_the_server_environment_fails_the_deploy_naming_it(
        client, unique_name, tmp_path):
    # environment="server": the version must run with the server's packages, which lack it
    # (without it, the version would get its own environment: tests/e2e/test_environments.py).
    from champion.capture import capture

    def fn(x):
        return x

    cap = capture(fn)
    manifest = {
        "function_name": "fn", "imports": [], "helpers": cap.helpers, "values": {},
        "files": {}, "signature": cap.signature, "modules": ["no_such_package_xyz"],
        "packages": {"no-such-package-xyz": "1.0"}, "python_version": cap.python_version,
        "environment_mode": "server",
    }
    with pytest.raises(DeployError, match="no_such_package_xyz"):
        client._request("POST", f"/api/deployments/{unique_name}/versions",
                        json={"manifest": manifest, "source": ""})


def read_vocab(word):
    with open("vocab.txt") as f:
        return word in f.read().split()


def test_shipped_files_open_by_their_relative_path(client, unique_name, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("apple\nbanana\n")
    client.deploy(read_vocab, unique_name, extra_files={"vocab.txt": vocab})
    assert client.predict(unique_name, "apple") is True
    assert client.predict(unique_name, "cherry") is False
    assert "vocab.txt" in client.version(unique_name, 1)["files"]
