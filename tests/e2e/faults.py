"""Fault injection for tests, loaded into a real server with ``--strategy-modules``.

``GET /healthz?fault=raise`` raises an unexpected exception inside the app: a stand-in for
a bug of ours, to see what the server answers around it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from champion.server import health

_healthz = health.healthz


async def healthz(request: Request) -> Response:
    if request.query_params.get("fault") == "raise":
        raise RuntimeError("injected fault at /srv/secret/path")
    return await _healthz(request)


health.healthz = healthz  # type: ignore[assignment]  # the routes are built after this


# A full disk, while the file named by CHAMPION_TEST_DISK_FULL exists: the store's writes
# fail as SQLite's and the file system's do then.

import errno  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
from typing import Any  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from champion.store import Store  # noqa: E402
from champion.store.artifacts import ArtifactStore  # noqa: E402


def _full() -> bool:
    flag = os.environ.get("CHAMPION_TEST_DISK_FULL")
    return bool(flag) and os.path.exists(flag)


_insert_feedback = Store.insert_feedback
_put_verified = ArtifactStore.put_verified


def insert_feedback(self: Store, rows: Any) -> Any:
    if _full():
        raise sa.exc.OperationalError("INSERT INTO feedback", {},
                                      sqlite3.OperationalError("database or disk is full"))
    return _insert_feedback(self, rows)


def put_verified(self: ArtifactStore, digest: str, chunks: Any) -> None:
    if _full():
        raise OSError(errno.ENOSPC, "No space left on device", str(self.root / digest))
    _put_verified(self, digest, chunks)


Store.insert_feedback = insert_feedback  # type: ignore[method-assign]
ArtifactStore.put_verified = put_verified  # type: ignore[method-assign]
