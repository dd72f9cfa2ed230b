"""The Python SDK over HTTP."""

from champion.client._client import (
    Client,
    DeployedVersion,
    connect,
    delete,
    deploy,
    deployments,
    get_inference,
    predict,
    promote,
    rollback,
    set_alias,
    version,
    versions,
)

__all__ = [
    "Client",
    "DeployedVersion",
    "connect",
    "delete",
    "deploy",
    "deployments",
    "get_inference",
    "predict",
    "promote",
    "rollback",
    "set_alias",
    "version",
    "versions",
]
