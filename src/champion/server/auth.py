"""Who is calling: the admin token, a scoped token, a dashboard session, or nobody; what each
may do (scopes), how fast (rate limits), and the audit log of every admin action.

Scopes: ``admin`` may do everything; ``deploy`` may upload artifacts, create versions and read
deployments; ``infer`` may call endpoints and ``feedback`` may send feedback (both matter
when the server runs with ``--require-auth``; otherwise those routes are open to anyone).
Tokens other than the admin token are kept as SHA-256 hashes (they are 256-bit random
strings, so a fast hash is enough) and shown once, when created.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from champion.errors import Forbidden, TooManyRequests

log = logging.getLogger("champion.server")

SCOPES = ("admin", "deploy", "infer", "feedback")
RESERVED = ("admin", "dashboard", "anonymous")
#: where an authenticated request keeps its caller (``request.scope[CALLER_KEY]``)
CALLER_KEY = "champion.caller"
PREFIX = "cht_"


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]
    rate_limit: float | None = None  # requests per second; None: the server's default
    admin_token: bool = False  # the server's own admin token (or a dashboard session)

    def may(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


ADMIN = Caller("admin", frozenset({"admin"}), admin_token=True)
DASHBOARD = Caller("dashboard", frozenset({"admin"}), admin_token=True)


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Tokens:
    """The live scoped tokens by hash, reloaded from the store (every replica polls it)."""

    def __init__(self) -> None:
        self.by_hash: dict[str, Caller] = {}

    def load(self, rows: Iterable[dict[str, Any]]) -> None:
        self.by_hash = {
            r["hash"]: Caller(r["name"], frozenset(r["scopes"] or ()), r["rate_limit"])
            for r in rows}

    def find(self, token: str) -> Caller | None:
        if not token.startswith(PREFIX):
            return None
        return self.by_hash.get(hash_token(token))


def check_scope(caller: Caller, scope: str, where: str) -> None:
    if not caller.may(scope):
        have = ", ".join(sorted(caller.scopes)) or "none"
        raise Forbidden(
            f"the token {caller.name!r} (scopes: {have}) may not call {where}: that needs a "
            f"token with scope {scope!r} or 'admin'", scope=scope)


class RateLimiter:
    """Token buckets per key (a token's name, or an anonymous caller's address): ``rate``
    requests per second on average, bursts of up to one second's worth (at least 1)."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, tuple[float, float, float]] = {}  # key -> (tokens, when, rate)

    def take(self, key: str, rate: float) -> float:
        """0 when the request may go; else the seconds until it may."""
        now = self.clock()
        burst = max(1.0, rate)
        tokens, when, _ = self.buckets.get(key, (burst, now, rate))
        tokens = min(burst, tokens + (now - when) * rate)
        if tokens >= 1.0 - 1e-9:
            self.buckets[key] = (tokens - 1.0, now, rate)
            if len(self.buckets) > self.MAX_KEYS:
                self._prune(now)
            return 0.0
        self.buckets[key] = (tokens, now, rate)
        return (1.0 - tokens) / rate

    def _prune(self, now: float) -> None:
        """Forget the buckets that have refilled (they would start full anyway)."""
        full = [k for k, (tok, when, rate) in self.buckets.items()
                if tok + (now - when) * rate >= max(1.0, rate)]
        for key in full:
            del self.buckets[key]

    def check(self, key: str, rate: float, who: str) -> None:
        if rate <= 0:
            return
        wait = self.take(key, rate)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise TooManyRequests(f"rate limit of {rate:g} requests per second reached for "
                                  f"{who}; retry after {retry} s", retry_after=retry)


class AuditLog:
    """ASGI middleware: every change under /api/ (any method but GET and HEAD) made by an
    authenticated caller is written to the audit log, with the caller's token name and the
    answer's status, before the answer leaves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS")
                or not scope["path"].startswith("/api/")):
            await self.app(scope, receive, send)
            return
        recorded = False

        async def audited(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await _record(scope, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, audited)
        except Exception:
            if not recorded:
                recorded = True
                await _record(scope, 500)
            raise


async def _record(scope: Scope, status: int) -> None:
    import asyncio

    caller: Caller | None = scope.get(CALLER_KEY)
    if caller is None:
        return  # anonymous: refused before it did anything (401), and never written
    app = scope.get("app")
    st = getattr(getattr(app, "state", None), "champion", None)
    if st is None:
        return
    headers = dict(scope.get("headers") or [])
    user = headers.get(b"x-champion-user", b"").decode("latin-1").strip()[:128]
    name = (scope.get("path_params") or {}).get("name")
    row = {"ts": time.time(), "token": caller.name, "user": user,
           "method": scope["method"][:8], "path": scope["path"][:512].replace("\x00", ""),
           "status": status,
           "deployment": name[:128] if isinstance(name, str) and
           scope["path"].startswith("/api/deployments/") else None}
    try:
        await asyncio.to_thread(st.store.insert_audit_log, row)
    except Exception:
        log.exception("could not write the audit log row %s", row)
