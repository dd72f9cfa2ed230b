"""Dashboard sessions: a signed cookie, its CSRF token, sign-out and one-time sign-in codes.

A session is a cookie ``champion_session=ID.EXPIRES.SIGNATURE``: a random id, an expiry
(Unix seconds) and an HMAC-SHA256 over both, keyed by a key derived from the admin token. It
holds no secret itself (the admin token never leaves the server), and any replica that knows
the token can verify it without shared state; changing the token ends every session. The
cookie is HttpOnly and SameSite=Strict (Secure over HTTPS) and lasts :data:`LIFETIME`.

The CSRF token of a session is another HMAC of its id: state-changing requests carry it, in
the form field ``csrf`` (dashboard forms) or the header ``X-Champion-CSRF`` (the JSON API
called with the cookie), and it is compared in constant time.

Signing out deletes the cookie and revokes its id in this process until it would have expired
(a copy of the cookie taken before sign-out stays valid on other replicas until then).

A one-time sign-in code (``champion demo`` prints a link with one) is minted through the
admin API, kept hashed in this process for :data:`CODE_LIFETIME`, and spent by the POST that
signs in; the GET that shows the link's page does not spend it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from starlette.requests import HTTPConnection

COOKIE = "champion_session"
FLASH_COOKIE = "champion_flash"
CSRF_HEADER = "x-champion-csrf"
CSRF_FIELD = "csrf"
LIFETIME = 12 * 3600
CODE_LIFETIME = 600
MAX_CODE_LIFETIME = 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Where a request authenticated by a session cookie keeps it (``request.scope[SCOPE_KEY]``).
SCOPE_KEY = "champion.session"


@dataclass(frozen=True)
class Session:
    id: str
    expires: int
    csrf: str


@dataclass
class Sessions:
    """What this process remembers: revoked session ids and unspent sign-in codes."""

    revoked: dict[str, int] = field(default_factory=dict)
    codes: dict[str, float] = field(default_factory=dict)

    def revoke(self, session: Session, now: float) -> None:
        self.revoked = {k: v for k, v in self.revoked.items() if v > now}
        self.revoked[session.id] = session.expires

    def mint_code(self, now: float, lifetime: float = CODE_LIFETIME) -> str:
        self.codes = {k: v for k, v in self.codes.items() if v > now}
        code = secrets.token_urlsafe(24)
        self.codes[_digest(code)] = now + lifetime
        return code

    def code_valid(self, code: str, now: float) -> bool:
        expires = self.codes.get(_digest(code))
        return expires is not None and expires > now

    def spend_code(self, code: str, now: float) -> bool:
        expires = self.codes.pop(_digest(code), None)
        return expires is not None and expires > now


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()


@lru_cache(maxsize=16)
def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"champion dashboard session v1", hashlib.sha256).digest()


def _mac(token: str, message: str) -> str:
    digest = hmac.new(_key(token), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_for(token: str, session_id: str) -> str:
    return _mac(token, "csrf:" + session_id)


def issue(token: str, now: float | None = None, lifetime: int = LIFETIME) -> tuple[str, Session]:
    """A new session: its cookie value and what it stands for."""
    sid = secrets.token_urlsafe(18)
    expires = int(now if now is not None else time.time()) + lifetime
    value = f"{sid}.{expires}.{_mac(token, f'{sid}.{expires}')}"
    return value, Session(sid, expires, csrf_for(token, sid))


def verify(token: str, value: str | None, now: float | None = None,
           sessions: Sessions | None = None) -> Session | None:
    """The session a cookie value stands for, or None (forged, expired, revoked, malformed)."""
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 3:
        return None
    sid, raw_expires, signature = parts
    if not raw_expires.isascii() or not raw_expires.isdigit():
        return None
    expected = _mac(token, f"{sid}.{raw_expires}")
    if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected.encode()):
        return None
    expires = int(raw_expires)
    if expires <= (now if now is not None else time.time()):
        return None
    if sessions is not None and sid in sessions.revoked:
        return None
    return Session(sid, expires, csrf_for(token, sid))


def csrf_ok(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(
        str(given).encode("utf-8", "replace"), session.csrf.encode())


# ------------------------------------------------------------------ per request


def sessions_of(conn: HTTPConnection) -> Sessions:
    """The application's :class:`Sessions`, made on first use."""
    app: Any = conn.scope.get("app")
    state = getattr(app, "state", None)
    if state is None:
        return _FALLBACK
    found = getattr(state, "dashboard_sessions", None)
    if found is None:
        found = Sessions()
        state.dashboard_sessions = found
    return found


_FALLBACK = Sessions()


def current(conn: HTTPConnection, token: str) -> Session | None:
    """The request's valid session, if its cookie carries one."""
    return verify(token, conn.cookies.get(COOKIE), sessions=sessions_of(conn))


def authenticate(conn: HTTPConnection, token: str) -> bool:
    """Whether the request may use the admin API on the strength of its session cookie.

    Safe methods need a valid session; others also need its CSRF token in the
    ``X-Champion-CSRF`` header (a missing or wrong one raises 403). A request it accepts is
    marked so that :func:`champion.server.http.actor` records "dashboard".
    """
    from champion.errors import Forbidden

    session = current(conn, token)
    if session is None:
        return False
    method = conn.scope.get("method", "GET")
    if method not in SAFE_METHODS and not csrf_ok(session, conn.headers.get(CSRF_HEADER)):
        raise Forbidden("a dashboard session changes things only with its CSRF token in the "
                        "X-Champion-CSRF header")
    conn.scope[SCOPE_KEY] = session
    return True
