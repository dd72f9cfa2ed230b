"""Small HTTP helpers: JSON in and out, the one error shape, body limits, auth."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from champion.errors import (
    BadRequest,
    ChampionError,
    InvalidJSON,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from champion.server.auth import ADMIN, CALLER_KEY, DASHBOARD, Caller, check_scope

JSON_TYPE = "application/json"
COOKIE_NAME = "champion_session"  # champion.server.ui.session.COOKIE
SESSION_SCOPE_KEY = "champion.session"  # champion.server.ui.session.SCOPE_KEY


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(exc: ChampionError, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    headers.update(getattr(exc, "headers", None) or {})
    if exc.request_id:
        headers["X-Champion-Request-Id"] = exc.request_id
    return json_response(exc.to_dict(), exc.status_code, headers or None)


def check_content_type(request: Request) -> None:
    ctype = request.headers.get("content-type")
    if ctype is None:
        return  # lenient: a body without a type is read as JSON
    main = ctype.split(";", 1)[0].strip().lower()
    if main != JSON_TYPE and not main.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as JSON with 'Content-Type: application/json' (got {main!r})"
        )


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise PayloadTooLarge(f"request body of {int(length)} bytes is over the limit "
                                      f"of {limit} bytes")
        except ValueError:
            raise BadRequest("invalid Content-Length header") from None
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, *, require_object: bool = True) -> Any:
    check_content_type(request)
    body = await read_body(request, limit)
    return parse_json(body, require_object=require_object)


def parse_json(body: bytes, *, require_object: bool = True) -> Any:
    if not body:
        raise InvalidJSON("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"the request body is not valid JSON: {exc}") from None
    if require_object and not isinstance(data, dict):
        raise InvalidJSON(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


MAX_VERSION = 2**31 - 1  # the store's version column is a 32-bit integer


def check_ref(name: str, ref: str) -> str:
    """A version reference from the path: a number the store can hold, or an alias.

    ``str.isdigit`` is true of digits like '²' that ``int`` refuses, and a number past the
    store's integer range fails in the database; both are simply versions that do not exist.
    """
    if ref.isdigit() and (not ref.isascii() or int(ref) > MAX_VERSION):
        raise NotFound(f"deployment {name!r} has no version {ref}", deployment=name)
    return ref


def bearer_token(request: Request) -> str | None:
    """The token: ``Authorization: Bearer <token>``, the token alone (``Authorization:
    <token>``, as Modelbit's client sends its API key), or ``X-Champion-Token``."""
    auth = request.headers.get("authorization", "").strip()
    if auth:
        scheme, sep, value = auth.partition(" ")
        if not sep:
            return scheme
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-champion-token")


def require_token(request: Request, token: str, scope: str = "admin") -> Caller:
    """The caller, who must have ``scope``: the admin token (every scope), a scoped token, or
    else a dashboard session cookie (see :mod:`champion.server.ui.session`: any method but GET
    also needs its CSRF header). A token over its rate limit is answered 429."""
    given = bearer_token(request)
    if given is None:
        from champion.server.ui import session  # the dashboard's modules import this one

        if COOKIE_NAME in request.cookies and session.authenticate(request, token):
            request.scope[CALLER_KEY] = DASHBOARD
            return DASHBOARD
        raise Unauthorized(
            "this call needs the admin token (or a token with the scope it needs): send "
            "'Authorization: Bearer <token>' (or the token alone). "
            "champion serve prints the admin token on first start and keeps it in its data "
            "directory (DATA_DIR/token); the CLI takes --token or CHAMPION_TOKEN, `champion "
            "login URL` saves it once, and the CLI and the client also read CHAMPION_HOME/token"
        )
    caller = identify(request, token, given)
    if caller is None:
        raise Unauthorized("the token is not valid for this server")
    request.scope[CALLER_KEY] = caller  # before the check: a refusal is audited too
    check_scope(caller, scope, f"{request.method} {request.url.path}")
    rate_limit(request, caller)
    return caller


def identify(request: Request, token: str, given: str) -> Caller | None:
    """The admin token, or a live scoped token; None for anything else."""
    if hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                           token.encode("utf-8", "surrogatepass")):
        return ADMIN
    st = getattr(request.app.state, "champion", None)
    return None if st is None else st.tokens.find(given)


def rate_limit(request: Request, caller: Caller | None) -> None:
    """429 when the caller is over its rate: a scoped token's own, else the server's
    ``rate_limit`` (not for the admin token); an anonymous caller's address, the server's
    ``anonymous_rate_limit``."""
    st = getattr(request.app.state, "champion", None)
    if st is None:
        return
    if caller is None:
        client = request.client.host if request.client else "unknown"
        st.limiter.check("@" + client, st.config.anonymous_rate_limit,
                         f"anonymous callers from {client}")
        return
    rate = caller.rate_limit
    if rate is None:
        rate = 0.0 if caller.admin_token else st.config.rate_limit
    st.limiter.check(caller.name, rate, f"the token {caller.name!r}")


def optional_caller(request: Request, token: str) -> Caller | None:
    """On a route open to anyone: the caller if it sent a valid token (its rate limit
    applies), else None (an anonymous caller, limited by address). An unknown token counts
    as none, as it always has on open routes."""
    given = bearer_token(request)
    caller = identify(request, token, given) if given else None
    if caller is not None:
        request.scope[CALLER_KEY] = caller
    rate_limit(request, caller)
    return caller


def actor(request: Request) -> str:
    """Who is acting: a scoped token's name (with X-Champion-User beside it); for the admin
    token X-Champion-User, else "dashboard" for a dashboard session, else "admin"."""
    user = request.headers.get("x-champion-user", "").strip()
    caller: Caller | None = request.scope.get(CALLER_KEY)
    if caller is not None and not caller.admin_token:  # a scoped token: its name, always
        return (f"{caller.name} ({user})" if user else caller.name)[:128]
    if user:
        return user[:128]
    if SESSION_SCOPE_KEY in request.scope:
        return "dashboard"
    return "admin"
