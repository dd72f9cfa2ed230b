"""The public API is small and pinned."""

from __future__ import annotations

import champion


def test_public_names_are_pinned():
    assert champion.__all__ == [
        "Client",
        "aim_modelbit_client",
        "connect",
    "create_experiment",
        "delete",
        "deploy",
        "deployments",
    "experiment_report",
        "feedback",
        "get_inference",
        "metrics",
        "predict",
        "promote",
        "rollback",
        "set_alias",
    "stop_experiment",
        "version",
        "versions",
    ]


def test_every_public_name_resolves_and_is_documented():
    for name in champion.__all__:
        obj = getattr(champion, name)
        assert callable(obj), name
        assert obj.__doc__, f"champion.{name} has no docstring"


def test_worker_import_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, champion.runtime.worker; "
        "heavy = [m for m in ('httpx', 'starlette', 'sqlalchemy', 'uvicorn') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
