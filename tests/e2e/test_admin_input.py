"""Every admin input is checked at the edge (issue 14): a 400 naming what is wrong, never a
500, a hung request, or a version that deploys and then fails every call."""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from champion.errors import BadRequest
from tests.e2e.test_hardening import error_of


def echo(x):
    return x


@pytest.fixture()
def admin(server) -> Iterator[httpx.Client]:
    with server.admin() as a:
        yield a


def deploy_mutated(client: Any, fn: Callable[..., Any], name: str,
                   mutate: Callable[[dict[str, Any], dict[str, bytes]], None], **kw: Any) -> Any:
    """Deploy ``fn`` with its captured manifest changed by ``mutate`` on the way."""
    original = client.deploy_manifest

    def patched(n: str, manifest: dict[str, Any], blobs: dict[str, bytes], **kwargs: Any):
        manifest = copy.deepcopy(manifest)
        mutate(manifest, blobs)
        return original(n, manifest, blobs, **kwargs)

    client.deploy_manifest = patched
    try:
        return client.deploy(fn, name, progress=False, **kw)
    finally:
        client.deploy_manifest = original


def _with_file(dest: str) -> Callable[[dict[str, Any], dict[str, bytes]], None]:
    def mutate(manifest: dict[str, Any], blobs: dict[str, bytes]) -> None:
        data = b"pwned\n"
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        manifest["files"][dest] = digest
    return mutate


@pytest.mark.parametrize("dest", ["../../escaped.txt", "/tmp/champion-escaped.txt",
                                  "a/../../b.txt", "a\\..\\b.txt", ""])
def test_extra_files_outside_the_version_are_refused(client, unique_name, dest):
    with pytest.raises(BadRequest, match="files"):
        deploy_mutated(client, echo, unique_name, _with_file(dest))


def test_extra_files_land_in_a_directory_removed_when_the_worker_exits(tmp_path):
    from tests.conftest import Server

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    srv = Server(tmp_path / "data", env={"TMPDIR": str(scratch)}).start()
    try:
        with srv.client() as c:
            def reads(x):
                return open("notes/hello.txt").read()

            deploy_mutated(c, reads, "reads", _with_file("notes/hello.txt"))
            assert c.predict("reads", 1) == "pwned\n"
            assert [p.name[:15] for p in scratch.iterdir()] == ["champion-files-"]
            c.delete("reads")
        import time
        deadline = time.monotonic() + 10
        while any(scratch.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(p.name.startswith("champion-files-") for p in scratch.iterdir())
    finally:
        srv.stop()


@pytest.mark.parametrize("field, value", [
    ("function_name", 5),
    ("function_name", "not an identifier"),
    ("values", []),
    ("values", {"x": "not-a-hash"}),
    ("files", {"a.txt": 7}),
    ("imports", "import os"),
    ("helpers", [1]),
    ("signature", "x"),
    ("signature", [{"name": "x", "kind": "BOGUS", "default": False}]),
    ("signature", [{"kind": "POSITIONAL_OR_KEYWORD"}]),
    ("modules", "json"),
    ("modules", ["not a module"]),
    ("packages", ["numpy"]),
    ("function_pickle", 3),
    ("python_version", {"major": 3}),
    ("environment_mode", "docker"),
])
def test_a_malformed_manifest_field_is_400_naming_it(client, unique_name, field, value):
    def mutate(manifest: dict[str, Any], blobs: dict[str, bytes]) -> None:
        manifest[field] = value

    with pytest.raises(BadRequest, match=field):
        deploy_mutated(client, echo, unique_name, mutate)


def test_a_missing_manifest_field_is_400(admin, unique_name):
    resp = admin.post(f"/api/deployments/{unique_name}/versions",
                      json={"manifest": {"values": {}}})
    assert "function_name" in error_of(resp, 400)["message"]


def test_manifest_modules_are_never_imported_by_the_server(tmp_path):
    from tests.conftest import Server

    marker = tmp_path / "imported"
    srv = Server(tmp_path / "data", env={"CHAMPION_TEST_IMPORT_MARKER": str(marker)}).start()
    try:
        with srv.client() as c:
            def mutate(manifest: dict[str, Any], blobs: dict[str, bytes]) -> None:
                manifest["modules"] = ["tests.e2e.sidepkg.nothing_here"]

            with contextlib.suppress(BadRequest):
                deploy_mutated(c, echo, "sneaky", mutate)
        assert srv.proc is not None
        pids = marker.read_text().split() if marker.exists() else []
        assert str(srv.proc.pid) not in pids
    finally:
        srv.stop()


@pytest.mark.parametrize("config", [{"workers": 0.5}, {"workers": 0}, {"workers": 65},
                                    {"workers": "2"}, {"timeout": 0}, {"timeout": -1},
                                    {"batch_max_size": 2.5}, {"log_sample_rate": 2},
                                    {"log_redact": "field"}, {"nonsense": 1}])
def test_a_deployment_setting_out_of_its_bounds_is_400_naming_it(admin, client, unique_name,
                                                                 config):
    client.deploy(echo, unique_name)
    key = next(iter(config))
    err = error_of(admin.patch(f"/api/deployments/{unique_name}", json=config), 400)
    assert key in err["message"]
    # and at deploy time too, before anything runs
    body = {"manifest": {}, "config": config}
    resp = admin.post(f"/api/deployments/{unique_name}/versions", json=body)
    assert resp.status_code == 400
    assert admin.get(f"/api/deployments/{unique_name}").json()["config"] == {}


def test_a_whole_float_is_a_whole_number(admin, client, unique_name):
    client.deploy(echo, unique_name)
    resp = admin.patch(f"/api/deployments/{unique_name}", json={"workers": 2.0})
    assert resp.status_code == 200, resp.text
    assert resp.json()["config"]["workers"] == 2


@pytest.mark.parametrize("version", [10**30, "\u00b2", "99999999999", -1, 0, 1.5, True, None])
def test_an_alias_to_an_impossible_version_is_400(admin, client, unique_name, version):
    client.deploy(echo, unique_name)
    err = error_of(admin.put(f"/api/deployments/{unique_name}/aliases/beta",
                             json={"version": version}), 400)
    assert "version" in err["message"]


@pytest.mark.parametrize("query", ["bucket=1e400", "bucket=nan", "since=nan", "until=inf",
                                   "since=-1e400", "since=" + "9" * 400 + "d"])
def test_metric_query_out_of_range_is_400(admin, client, unique_name, query):
    client.deploy(echo, unique_name)
    error_of(admin.get(f"/api/deployments/{unique_name}/metrics?{query}"), 400)


@pytest.mark.parametrize("query", ["since=nan", "version=99999999999999999999",
                                   "version=%C2%B2", "status=1e9", "after=nan,x",
                                   "unit=a%00b", "experiment=e%00"])
def test_log_query_out_of_range_is_400(admin, client, unique_name, query):
    client.deploy(echo, unique_name)
    error_of(admin.get(f"/api/deployments/{unique_name}/logs?{query}"), 400)
    if not query.startswith("after"):  # the export has no cursor
        error_of(admin.get(f"/api/deployments/{unique_name}/logs/export?{query}"), 400)
