"""Per-version environments built with uv: through the real server.

These install a small pure-Python package (tabulate, two releases whose __version__
differs) from the package index into environments under the server's data directory; the
server's own environment does not have it. Builds are shared across the tests of a session
by deploying the same pins (equal pins, one environment).
"""

from __future__ import annotations

import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from champion.errors import DeployError, Unavailable
from tests.conftest import Server

OLD, NEW = "0.8.10", "0.9.0"

def tabulate_version(x):
    import tabulate

    return {"tabulate": tabulate.__version__, "x": x}


@pytest.fixture(scope="module", autouse=True)
def server_lacks_the_package():
    assert importlib.util.find_spec("tabulate") is None, (
        "these tests need an environment without 'tabulate': pip uninstall tabulate")


@pytest.fixture(scope="module")
def two_versions(server, tmp_path_factory):
    """One deployment whose versions 1 and 2 pin different tabulate releases."""
    client = server.client()
    name = "envs_side_by_side"
    lines: list[str] = []
    v1 = client.deploy(tabulate_version, name, python_packages=[f"tabulate=={OLD}"],
                       progress=lines.append)
    v2 = client.deploy(tabulate_version, name, python_packages=[f"tabulate=={NEW}"],
                       progress=lines.append)
    yield client, name, v1, v2, lines
    client.close()


def test_versions_pinned_to_different_releases_answer_with_their_own(two_versions):
    client, name, v1, v2, lines = two_versions
    assert (v1.status, v2.status) == ("ready", "ready")
    assert v1.environment["env_id"] != v2.environment["env_id"]
    assert f"tabulate=={OLD}" in v1.environment["resolved"]
    assert v1.build_seconds is not None and v1.build_seconds > 0
    assert any("environment ready" in line for line in lines)  # the deploy showed progress
    assert client.predict(name, 1, version=1) == {"tabulate": OLD, "x": 1}
    assert client.predict(name, 2, version=2) == {"tabulate": NEW, "x": 2}


def test_side_by_side_concurrently(two_versions, server):
    _client, name, _v1, _v2, _lines = two_versions

    def call(i):
        version = 1 + i % 2
        with httpx.Client(base_url=server.url, timeout=60) as http:
            r = http.post(f"/v1/{name}/{version}", json={"data": i})
        return version, r.status_code, r.json()["data"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(40)))
    for version, status, data in results:
        assert status == 200
        assert data["tabulate"] == (OLD if version == 1 else NEW)


def test_versions_with_the_same_pins_share_one_environment(two_versions):
    client, name, v1, _v2, _lines = two_versions
    started = time.perf_counter()
    v3 = client.deploy(tabulate_version, name, python_packages=[f"tabulate=={OLD}"])
    assert v3.environment["env_id"] == v1.environment["env_id"]
    assert time.perf_counter() - started < 15
    assert client.predict(name, 3, version=3)["tabulate"] == OLD
    envs = client._request("GET", "/api/environments")["environments"]
    assert v1.environment["env_id"] in {e["env_id"] for e in envs}


def test_a_package_that_does_not_exist_fails_the_deploy_naming_it(client, unique_name):
    missing = "champion-test-no-such-package-xyz"
    with pytest.raises(DeployError, match=missing) as info:
        client.deploy(tabulate_version, unique_name, python_packages=[f"{missing}==1.0"],
                      progress=False)
    assert info.value.detail["version"] == 1
    assert client.version(unique_name, 1)["status"] == "failed"
    with pytest.raises(Unavailable, match="cannot serve") as served:
        client.predict(unique_name, 1, version=1)
    # the installer's text is the admin's (the build log), not an anonymous caller's
    assert missing not in str(served.value) and "/build" in str(served.value)


class SlowToLoad:
    """Unpickling it takes a while: the version stays 'building' during its load check."""

    def __reduce__(self):
        return (time.sleep, (3,))


SLOW = SlowToLoad()


def slow_tabulate(x):
    import tabulate

    return [SLOW is None, tabulate.__version__]


def test_wait_false_returns_at_once_and_no_call_reaches_the_version_before_it_is_ready(
        two_versions, unique_name):
    client = two_versions[0]
    v = client.deploy(slow_tabulate, unique_name, python_packages=[f"tabulate=={NEW}"],
                      wait=False)
    assert (v.version, v.status) == (1, "building")
    with pytest.raises(Unavailable, match="not ready yet") as info:
        client.predict(unique_name, 0)
    assert info.value.status_code == 503
    client.wait_for_build(v, progress=False)
    assert v.status == "ready"
    assert client.predict(unique_name, 0) == [True, NEW]


def test_a_python_the_machine_lacks_fails_the_deploy_clearly(client, unique_name):
    with pytest.raises(DeployError, match=r"Python 3\.5.*never downloads") as info:
        client.deploy(tabulate_version, unique_name, python_version="3.5")
    assert "it has Python 3.11" in info.value.message or "it has Python" in info.value.message
    with pytest.raises(Exception, match="no deployment"):
        client.version(unique_name, 1)  # no version was recorded


def python_version(x):
    import platform

    return platform.python_version()


def other_python() -> str | None:
    import platform

    from champion.runtime.pythons import find_interpreter

    ours = ".".join(platform.python_version().split(".")[:2])
    for candidate in ("3.12", "3.13", "3.10"):
        if candidate == ours:
            continue
        try:
            return find_interpreter(candidate).minor
        except DeployError:
            continue
    return None


def test_a_python_other_than_the_servers_runs_on_that_interpreter(client, unique_name):
    wanted = other_python()
    if wanted is None:
        pytest.skip("no Python but the server's is installed on this machine")
    v = client.deploy(python_version, unique_name, python_version=wanted, progress=False)
    assert v.environment["interpreter"].startswith(wanted + ".")
    assert client.predict(unique_name, 0).startswith(wanted + ".")


def test_a_restarted_server_reuses_the_environments_it_built(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        with srv.client() as client:
            v = client.deploy(tabulate_version, "reuse", python_packages=[f"tabulate=={NEW}"],
                              progress=False)
        built = v.environment["env_id"]
        marker = tmp_path / "data" / "envs" / built / "champion-env.json"
        first = marker.read_text()
        srv.stop()
        srv.start()
        with srv.client() as client:
            assert client.predict("reuse", 7)["tabulate"] == NEW
            envs = client._request("GET", "/api/environments")["environments"]
        assert [e["env_id"] for e in envs] == [built]
        assert marker.read_text() == first  # not built again
        assert "building environment" not in srv.log().split("Finished server process")[-1]
    finally:
        srv.stop()
