"""/healthz (the process answers) and /readyz (and its store does)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from champion import __version__
from champion.server.http import json_response
from champion.server.state import State

log = logging.getLogger("champion.server")


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    st: State = request.app.state.champion
    try:
        await asyncio.wait_for(asyncio.to_thread(st.store.ping), 5)
    except Exception:
        log.warning("readiness check: the store does not answer", exc_info=True)
        return json_response({"status": "unavailable", "store": "not answering"}, 503)
    return json_response({"status": "ready", "store": st.store.engine.dialect.name})
