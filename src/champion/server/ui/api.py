"""The dashboard reads and changes everything through the JSON API, in process.

A page asks :func:`call` for ``GET /api/...`` with the browser's own session cookie, so the
page shows exactly what the API answers (the same code computes every figure) and the
dashboard holds no privilege of its own: the API checks the session as it checks any
caller's. A change is a ``POST``/``PUT`` with the session's CSRF header, recorded by the API as
made by "dashboard".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.types import Message

from champion.server.ui.session import CSRF_HEADER, Session


class ApiError(Exception):
    """The API answered with an error: its status and message (the one error shape)."""

    def __init__(self, status: int, message: str, type_name: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type_name = type_name


async def call(request: Request, session: Session, method: str, path: str, *,
               query: dict[str, Any] | None = None, body: Any = None) -> Any:
    """Run ``method path`` through the application as the signed-in browser; its JSON.

    Raises :class:`ApiError` when the API answers an error.
    """
    payload = b"" if body is None else orjson.dumps(body)
    headers: list[tuple[bytes, bytes]] = [
        (b"host", request.headers.get("host", "localhost").encode("latin-1", "replace")),
        (b"cookie", request.headers.get("cookie", "").encode("latin-1", "replace")),
        (b"accept", b"application/json"),
    ]
    if body is not None:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode())]
    if method not in ("GET", "HEAD"):
        headers.append((CSRF_HEADER.encode(), session.csrf.encode()))
    query_string = urlencode({k: v for k, v in (query or {}).items() if v is not None})
    scope = {
        "type": "http",
        "asgi": request.scope.get("asgi", {"version": "3.0"}),
        "http_version": "1.1",
        "method": method,
        "scheme": request.url.scheme,
        "server": request.scope.get("server"),
        "client": request.scope.get("client"),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string.encode(),
        "headers": headers,
        "state": dict(request.scope.get("state") or {}),
        "extensions": {},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    status = 500
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.app(scope, receive, send)
    raw = b"".join(chunks)
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        data = None
    if status >= 400:
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            raise ApiError(status, str(err.get("message", "")), str(err.get("type", "")))
        raise ApiError(status, f"the API answered HTTP {status}")
    return data
