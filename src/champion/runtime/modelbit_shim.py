"""``import modelbit`` inside a champion worker: the calls a deployment's own code makes.

Code written for Modelbit (a ``source.py`` from a Modelbit repository, or a function that
uses ``mb.get_secret``) runs unchanged: the worker puts this module in ``sys.modules`` as
``modelbit`` before it loads the version. It stands in for what makes sense inside a
deployment; everything else raises an AttributeError that says so.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

_STUB = b"_: MBFileStub"


def load_value(name: str, restoreClass: type | None = None) -> Any:
    """Unpickle a value shipped with the version (``load_value("data/model.pkl")``)."""
    path = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"modelbit.load_value({name!r}): the version has no file {name!r}; ship it in "
            "the deployment's folder (data/NAME.pkl)") from None
    if data.startswith(_STUB):
        raise ValueError(
            f"modelbit.load_value({name!r}): the file is a Modelbit file stub, not the "
            "value: check the repository out with Modelbit's git filter (modelbit clone) "
            "so that the real file is there, then deploy again")
    if name.endswith((".joblib", ".jlib")):
        import joblib

        value = joblib.load(path)
    else:
        import cloudpickle

        value = cloudpickle.loads(data)
    if restoreClass is not None and isinstance(value, dict):
        instance: Any = object.__new__(restoreClass)
        if hasattr(instance, "__setstate__"):
            instance.__setstate__(value)
        else:
            instance.__dict__.update(value)
        return instance
    return value


def get_deployment_info() -> dict[str, Any]:
    return {"branch": "main", "name": os.environ.get("CHAMPION_DEPLOYMENT", ""),
            "version": os.environ.get("CHAMPION_VERSION", "")}


def in_modelbit() -> bool:
    """True: the code runs as a deployment (in champion, standing in for Modelbit)."""
    return True


def get_secret(name: str, deployment: str | None = None, branch: str | None = None,
               encoding: str = "utf8", ignore_missing: bool = False) -> str | None:
    """A secret, read from the environment variable of that name on the server."""
    value = os.environ.get(name)
    if value is None and not ignore_missing:
        raise KeyError(f"modelbit.get_secret({name!r}): champion reads secrets from the "
                       f"environment of champion serve, and {name} is not set there")
    return value


@contextlib.contextmanager
def setup(name: str) -> Iterator[None]:
    yield


@contextlib.contextmanager
def trace(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        print(f"> {name!r} took {(time.perf_counter() - started) * 1000:.0f}ms",
              file=sys.stderr)


def log_image(obj: Any) -> None:
    print("modelbit.log_image: images are not kept by champion", file=sys.stderr)


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"modelbit.{name} is not available inside a champion deployment (champion stands in "
        "for load_value, get_secret, get_deployment_info, in_modelbit, setup, trace and "
        "log_image)")
