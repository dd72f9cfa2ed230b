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
