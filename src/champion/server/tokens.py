"""Scoped tokens and the audit log under /api/: create, list, revoke; read the log."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.errors import BadRequest, Conflict, NotFound
from champion.names import NAME_RE
from champion.server.auth import RESERVED, SCOPES, hash_token, new_token
from champion.server.http import actor, json_response, read_json, require_token
from champion.store.tokens import TokenExists
from champion.timeutil import parse_time

if TYPE_CHECKING:
    from champion.server.state import State

log = logging.getLogger("champion.server")


async def reload(st: State) -> None:
    st.tokens.load(await asyncio.to_thread(st.store.active_tokens))


async def poll(st: State) -> None:
    """Reload the live tokens now and then: another replica may have created or revoked one."""
    while True:
        await asyncio.sleep(max(0.2, st.config.poll_interval))
        try:
            await reload(st)
        except Exception:
            log.warning("cannot reload the tokens", exc_info=True)


def _state(request: Request) -> State:
    st: State = request.app.state.champion
    require_token(request, st.token, "admin")
    return st


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("name", "scopes", "prefix", "rate_limit", "created_at",
                                    "created_by", "revoked_at")}


async def create(request: Request) -> Response:
    """POST /api/tokens {name, scopes, rate_limit}: the token, in this answer only."""
    st = _state(request)
    body = await read_json(request, 64 * 1024)
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest("'name' names the token: letters, digits, '_', '-' or '.', starting "
                         "with a letter or digit, at most 128 characters", field="name")
    if name in RESERVED:
        raise BadRequest(f"{name!r} is reserved; pick another name", field="name")
    scopes = body.get("scopes")
    if isinstance(scopes, str):
        scopes = [scopes]
    if (not isinstance(scopes, list) or not scopes
            or not all(isinstance(s, str) and s in SCOPES for s in scopes)):
        raise BadRequest(f"'scopes' is a list of one or more of {', '.join(SCOPES)}",
                         field="scopes")
    rate = body.get("rate_limit")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                             or not math.isfinite(rate) or not 0 < rate <= 1e6):
        raise BadRequest("'rate_limit' is requests per second, a number above 0 and at most "
                         "1000000 (or null: the server's --rate-limit)", field="rate_limit")
    token = new_token()
    row = {"name": name, "hash": hash_token(token), "prefix": token[:8],
           "scopes": sorted(set(scopes), key=SCOPES.index),
           "rate_limit": None if rate is None else float(rate), "created_at": time.time(),
           "created_by": actor(request)}
    try:
        await asyncio.to_thread(st.store.create_token, row)
    except TokenExists:
        raise Conflict(f"a token named {name!r} exists or existed (names are not reused); "
                       "pick another name", field="name") from None
    await reload(st)
    return json_response({**_public(row), "token": token}, status=201)


async def listing(request: Request) -> Response:
    st = _state(request)
    revoked = request.query_params.get("revoked", "").lower() in ("1", "true", "yes")
    rows = await asyncio.to_thread(st.store.list_tokens, revoked=revoked)
    return json_response({"tokens": [_public(r) for r in rows]})


async def revoke(request: Request) -> Response:
    st = _state(request)
    name = request.path_params["name"]
    if not await asyncio.to_thread(st.store.revoke_token, name, time.time()):
        raise NotFound(f"no live token named {name!r}")
    await reload(st)
    return json_response({"revoked": name})


async def audit(request: Request) -> Response:
    """GET /api/audit?limit=&token=&since=: the admin actions, newest first."""
    st = _state(request)
    q = request.query_params
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise BadRequest("query parameter 'limit' must be an integer") from None
    if not 1 <= limit <= 10_000:
        raise BadRequest("query parameter 'limit' must be between 1 and 10000")
    since = None
    if q.get("since"):
        try:
            since = parse_time(q["since"])
        except ValueError as exc:
            raise BadRequest(f"query parameter 'since': {exc}") from None
        if not math.isfinite(since):
            raise BadRequest("query parameter 'since' must be a finite time")
    rows = await asyncio.to_thread(st.store.audit_log, limit, token=q.get("token") or None,
                                   since=since)
    return json_response({"audit": rows})


def routes() -> list[Route]:
    return [
        Route("/api/tokens", create, methods=["POST"]),
        Route("/api/tokens", listing, methods=["GET"]),
        Route("/api/tokens/{name}", revoke, methods=["DELETE"]),
        Route("/api/audit", audit, methods=["GET"]),
    ]
