"""/healthz (the process answers) and /readyz (and its store does)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil

from starlette.requests import Request
from starlette.responses import Response

from champion import __version__
from champion.server.http import json_response
from champion.server.state import State
from champion.store.failures import recently_full

log = logging.getLogger("champion.server")


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


MIN_FREE_BYTES = 16 * 1024 * 1024


def _free_bytes(st: State) -> int:
    paths = [st.store.artifacts.root]
    if st.store.is_sqlite:
        paths.append(st.config.data_path)
    free = []
    for path in paths:
        with contextlib.suppress(OSError):
            free.append(shutil.disk_usage(path).free)
    return min(free) if free else MIN_FREE_BYTES


async def readyz(request: Request) -> Response:
    """Ready: the store answers and has room. The reason otherwise, without the driver's
    text (the server log has it): an anonymous caller may ask."""
    st: State = request.app.state.champion
    try:
        await asyncio.wait_for(asyncio.to_thread(st.store.ping), 5)
        free = await asyncio.wait_for(asyncio.to_thread(_free_bytes, st), 5)
    except Exception:
        log.warning("readiness check: the store does not answer", exc_info=True)
        return json_response({"status": "unavailable", "store": "not answering"}, 503)
    if free < MIN_FREE_BYTES or recently_full():
        return json_response({"status": "unavailable", "store": st.store.engine.dialect.name,
                              "storage": "no space left on device"}, 503)
    return json_response({"status": "ready", "store": st.store.engine.dialect.name})
