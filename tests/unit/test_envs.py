"""Per-version environments without building one: plans, keys, collection."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import platform

import pytest

from champion.errors import DeployError
from champion.runtime.envs import MARKER, EnvManager, EnvPlan, clean_requirements, plan_for
from champion.runtime.pythons import find_interpreter

NUMPY = importlib.metadata.version("numpy")


def manifest(**extra):
    return {"packages": {}, "python_version": platform.python_version(), **extra}


def test_a_version_with_the_servers_packages_needs_no_environment():
    assert plan_for(manifest(packages={"numpy": NUMPY})) is None
    assert plan_for(manifest(requirements=[f"numpy=={NUMPY}", "champion==9", "modelbit==1"])
                    ) is None


@pytest.mark.parametrize("requirements, reason", [
    (["numpy==0.0.1"], f"numpy==0.0.1: the server has {NUMPY}"),
    (["tabulate==0.9.0"], "tabulate==0.9.0: the server has none"),
    (["numpy>=1"], "numpy>=1 is not an exact pin"),
])
def test_a_version_whose_packages_differ_gets_its_own(requirements, reason):
    plan = plan_for(manifest(requirements=requirements))
    assert plan is not None and plan.reasons == (reason,)
    assert plan.python == ""


def test_a_python_asked_for_or_captured_elsewhere_gets_its_own():
    plan = plan_for(manifest(python_request="3.99"))
    assert plan is not None and (plan.python, plan.strict_python) == ("3.99", True)
    plan = plan_for(manifest(python_version="3.99.1"))
    assert plan is not None and (plan.python, plan.strict_python) == ("3.99", False)
    ours = ".".join(platform.python_version().split(".")[:2])
    assert plan_for(manifest(python_request=ours)) is None


def test_environment_server_keeps_the_servers_environment():
    assert plan_for(manifest(requirements=["tabulate==0.9.0"], environment_mode="server")
                    ) is None


def test_requirement_lines_are_cleaned_and_sorted():
    assert clean_requirements(["# c", "", "B==1  # why", "a==2", "champion", "a==2"]) == [
        "a==2", "B==1"]


def test_equal_pins_share_an_environment_id(tmp_path):
    envs = EnvManager(tmp_path)
    one = envs.resolve(EnvPlan("", ("a==1", "b==2")))
    assert envs.resolve(EnvPlan("", ("a==1", "b==2"), ("other reason",))).env_id == one.env_id
    assert envs.resolve(EnvPlan("", ("a==1", "b==3"))).env_id != one.env_id
    assert "cloudpickle==" in " ".join(one.install) and "orjson==" in " ".join(one.install)


def test_a_python_this_machine_lacks_is_a_clear_deploy_error():
    with pytest.raises(DeployError, match=r"Python 3\.5.*never downloads") as info:
        find_interpreter("3.5")
    assert info.value.detail["python_version"] == "3.5"
    with pytest.raises(DeployError, match="not a Python version"):
        find_interpreter("three")


def fake_env(envs: EnvManager, env_id: str, size: int, used: float) -> None:
    path = envs.path(env_id)
    path.mkdir(parents=True)
    (path / MARKER).write_text(json.dumps({"env_id": env_id, "bytes": size}))
    os.utime(path / MARKER, (used, used))


def test_collection_removes_least_recently_used_beyond_the_budget_never_one_in_use(tmp_path):
    envs = EnvManager(tmp_path, budget_bytes=250)
    fake_env(envs, "oldest", 100, 1000)
    fake_env(envs, "in-use", 100, 2000)
    fake_env(envs, "older", 100, 3000)
    fake_env(envs, "newest", 100, 4000)
    envs.in_use = lambda: {"in-use"}
    removed = asyncio.run(envs.collect())
    assert removed == ["oldest", "older"]
    assert sorted(e["env_id"] for e in envs.listing()) == ["in-use", "newest"]
    assert asyncio.run(envs.collect()) == []  # within the budget now


def test_the_worker_lib_holds_only_the_workers_modules(tmp_path):
    envs = EnvManager(tmp_path)
    files = sorted(p.relative_to(envs.lib).as_posix() for p in envs.lib.rglob("*.py"))
    assert files == ["champion/__init__.py", "champion/runtime/__init__.py",
                     "champion/runtime/frames.py", "champion/runtime/gcsettle.py",
                     "champion/runtime/loader.py",
                     "champion/runtime/modelbit_shim.py", "champion/runtime/pickles.py",
                     "champion/runtime/protocol.py", "champion/runtime/worker.py",
                     "champion/runtime/zygote.py"]
    assert envs.worker_environ()["PYTHONPATH"] == str(envs.lib)
