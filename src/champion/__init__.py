"""champion: deploy Python models as versioned REST endpoints and test new versions live.

    import champion
    champion.connect("http://127.0.0.1:8000", token="...")
    v = champion.deploy(predict)          # a new immutable version
    champion.predict("predict", [1, 2])   # call the endpoint

The public names are loaded lazily so that worker processes, which import
``champion.runtime``, stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
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

if TYPE_CHECKING:
    from champion.client import (
        Client,
        aim_modelbit_client,
        connect,
        create_experiment,
        delete,
        deploy,
        deployments,
        experiment_report,
        feedback,
        get_inference,
        metrics,
        predict,
        promote,
        rollback,
        set_alias,
        stop_experiment,
        version,
        versions,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("champion.client"), name)
    raise AttributeError(f"module 'champion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
