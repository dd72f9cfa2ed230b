"""The Ray runtime's own logic, without Ray: names, errors, the address check, adoption.

Nothing here starts Ray, nor imports it (``test_building_and_naming_versions_needs_no_ray``).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import orjson
import pytest

from champion.errors import ModelError, ModelTimeout, Unavailable, WorkerCrashed
from champion.runtime.base import BaseRuntime, create_runtime, reply_or_raise
from champion.runtime.pool import PoolSpec, Runtime
from champion.runtime.rayserve import FAULT, RayRuntime, _fault, _ray_error, check_address

MANIFEST = {"function_name": "f", "helpers": ["def f(x):\n    return x\n"]}


def test_both_runtimes_implement_the_interface(tmp_path: Path) -> None:
    local = create_runtime("local", tmp_path, idle_timeout=1, fork_server=False, preload=())
    ray = create_runtime("ray", tmp_path, idle_timeout=1, fork_server=False, preload=())
    assert isinstance(local, Runtime) and isinstance(ray, RayRuntime)
    assert isinstance(local, BaseRuntime) and isinstance(ray, BaseRuntime)
    with pytest.raises(ValueError, match="unknown runtime 'k8s'"):
        create_runtime("k8s", tmp_path, idle_timeout=1, fork_server=False, preload=())


def test_application_names_are_shared_by_servers_of_one_store_and_by_a_deploy_check(
        tmp_path: Path) -> None:
    a, b = RayRuntime(tmp_path / "artifacts"), RayRuntime(tmp_path / "artifacts")
    other_store = RayRuntime(tmp_path / "elsewhere")
    spec = PoolSpec(key=("churn", 3), manifest=MANIFEST)
    check = PoolSpec(key=("churn", -12345), manifest=dict(MANIFEST))
    assert a.app_name(spec) == b.app_name(spec) == a.app_name(check)
    assert a.app_name(spec).startswith(f"champion~{a.store_id}~churn~")
    assert other_store.app_name(spec) != a.app_name(spec)
    changed = PoolSpec(key=("churn", 4), manifest={**MANIFEST, "helpers": ["def f(x): 0"]})
    assert a.app_name(changed) != a.app_name(spec)


def test_adopt_refiles_the_checked_application_without_a_second_load(tmp_path: Path) -> None:
    rt = RayRuntime(tmp_path)

    async def run() -> None:
        check = rt._version(PoolSpec(key=("churn", -7), manifest=MANIFEST))
        check.ready = asyncio.get_running_loop().create_future()
        check.ready.set_result(None)
        check.handle = object()
        rt.adopt(("churn", -7), PoolSpec(key=("churn", 1), manifest=MANIFEST))
        v = rt.versions_[("churn", 1)]
        assert rt.versions() == {("churn", 1)}
        assert v.handle is check.handle and v.ready is check.ready

    asyncio.run(run())


def test_a_new_replica_count_redeploys_and_autoscaling_comes_from_max_workers(
        tmp_path: Path) -> None:
    from champion.runtime.rayserve import _replicas

    rt = RayRuntime(tmp_path)
    one = PoolSpec(key=("churn", 1), manifest=MANIFEST)
    v = rt._version(one)
    v.ready = object()  # type: ignore[assignment]
    assert rt._version(PoolSpec(key=("churn", 1), manifest=MANIFEST)).ready is not None
    scaled = PoolSpec(key=("churn", 1), manifest=MANIFEST, workers=2, max_workers=6)
    assert rt._version(scaled).ready is None and v.reuse is False
    assert _replicas(one) == (1, 1) and _replicas(scaled) == (2, 6)


def test_faults_from_a_replica_come_back_as_the_same_errors() -> None:
    for err in (WorkerCrashed("churn:1: the worker process exited during the call"),
                ModelTimeout("churn:1 did not answer within 2 s; its worker was replaced"),
                Unavailable("churn:1 failed to load: ZeroDivisionError: x", cause="X")):
        back = _fault(orjson.dumps(err.to_dict()["error"]))
        assert type(back) is type(err) and back.message == err.message
    with pytest.raises(ModelError, match=r"ValueError: bad \(batch row 2\)"):
        reply_or_raise(13, orjson.dumps({"type": "ValueError", "message": "bad", "index": 2}))
    assert FAULT not in (10, 11, 12, 13)


def test_ray_exceptions_map_to_the_contract_statuses() -> None:
    def named(name: str) -> Exception:
        return type(name, (Exception,), {})("boom")

    assert _ray_error("churn:1", named("ActorDiedError")).status_code == 502
    assert _ray_error("churn:1", named("BackPressureError")).status_code == 503
    assert _ray_error("churn:1", named("RequestCancelledError")).status_code == 504
    assert _ray_error("churn:1", named("Mystery")).status_code == 500


def test_the_address_check_names_the_problem() -> None:
    assert check_address("") is None and check_address("auto") is None
    assert "not HOST:PORT" in (check_address("nonsense") or "")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # bound, not listening: refused
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in (
        check_address(f"127.0.0.1:{port}") or "")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert check_address(f"ray://127.0.0.1:{s.getsockname()[1]}") is None


def test_building_and_naming_versions_needs_no_ray(tmp_path: Path) -> None:
    before = "ray" in sys.modules
    rt = RayRuntime(tmp_path)
    spec = PoolSpec(key=("churn", 1), manifest=MANIFEST)
    rt._version(spec)
    rt.app_name(spec)
    rt.status()
    assert ("ray" in sys.modules) == before
