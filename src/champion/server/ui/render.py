"""Rendering pages: the Jinja environment, its filters, the headers every page carries, and
one-shot messages ("flash") shown after an action."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from champion import __version__
from champion.server.ui.session import CSRF_FIELD, FLASH_COOKIE, Session

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

#: Every dashboard page: scripts and styles from this server only, no framing, no referrer
#: beyond this origin. The JSON API is fetched from the same origin.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _when(ts: Any) -> str:
    """A Unix time as UTC text (the page's script shows it in the reader's time zone)."""
    if ts is None or ts == "":
        return "—"
    try:
        moment = dt.datetime.fromtimestamp(float(ts), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ts)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(ts: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(ts), tz=dt.UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS).decode()


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2).decode()


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _asset_version() -> str:
    """A digest of the dashboard's own scripts and styles, for cache-busting their URLs."""
    h = hashlib.sha256()
    for path in sorted(STATIC.glob("*.*")) + sorted((STATIC / "js").glob("*.js")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = _when
env.filters["iso"] = _iso
env.filters["tojson_attr"] = _json
env.filters["pretty"] = _pretty
env.tests["scalar"] = _scalar
env.globals["version"] = __version__
env.globals["asset_version"] = _asset_version()
env.globals["csrf_field"] = CSRF_FIELD


def render(request: Request, template: str, context: dict[str, Any], *,
           session: Session | None = None, status: int = 200) -> Response:
    """A page: the template with the session's CSRF token and any flash message."""
    flash = take_flash(request, session)
    html = env.get_template(template).render(
        request=request, session=session, csrf=session.csrf if session else "",
        flash=flash, path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/ui")
    return response


def error_page(request: Request, status: int, title: str, message: str, *,
               session: Session | None = None) -> Response:
    return render(request, "error.html", {"title": title, "message": message,
                                          "status": status}, session=session, status=status)


def login_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/ui/login?next=" + quote(target, safe=""), status_code=303,
                            headers={"cache-control": "no-store"})


# ------------------------------------------------------------------ flash


def _flash_mac(session: Session, payload: str) -> str:
    digest = hmac.new(session.csrf.encode(), b"flash:" + payload.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:18]).decode()


def set_flash(response: Response, session: Session, level: str, text: str) -> None:
    """A message for the next page this session shows (signed with the session's key)."""
    payload = base64.urlsafe_b64encode(orjson.dumps([level, text[:500]])).decode()
    response.set_cookie(FLASH_COOKIE, f"{payload}.{_flash_mac(session, payload)}", max_age=120,
                        path="/ui", httponly=True, samesite="strict")


def take_flash(request: Request, session: Session | None) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or session is None:
        return None
    payload, _, mac = raw.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _flash_mac(session, payload).encode()):
        return None
    try:
        level, text = orjson.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        return None
    return {"level": str(level), "text": str(text)}


# ------------------------------------------------------------------ static files


class Assets(StaticFiles):
    """The dashboard's files: vendored libraries cached for good (their names carry their
    versions), its own scripts revalidated on each load (their URLs carry a digest)."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendor = "/vendor/" in str(scope.get("path", ""))
        response.headers["cache-control"] = (
            "public, max-age=31536000, immutable" if vendor else "no-cache")
        response.headers["x-content-type-options"] = "nosniff"
        return response
