"""Signing in and out of the dashboard, and one-time sign-in links.

``GET /ui/login`` shows a form with a password field ``token`` (the admin token);
``POST /ui/login`` checks it in constant time and sets the session cookie. A link
``/ui/login?code=CODE`` (minted by ``POST /api/ui/sign-in-link`` with the admin token; what
``champion demo`` prints) shows a one-button form that POSTs the code: the code is spent only
by that POST, works once, and expires after a few minutes, so the copy left in the browser's
history or a proxy's log is worthless. The raw admin token is never accepted in a URL.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from champion.errors import BadRequest, PayloadTooLarge
from champion.server.http import json_response, read_body, read_json, require_token
from champion.server.ui import session as sessions
from champion.server.ui.render import SECURITY_HEADERS, error_page, render, set_flash

if TYPE_CHECKING:
    from champion.server.app import State

MAX_FORM_BYTES = 64 * 1024
FAILED_SIGN_IN_DELAY = 0.3  # seconds: a wrong token costs a guesser this much each


def _state(request: Request) -> State:
    st: State = request.app.state.champion
    return st


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a dashboard path on this server, nothing else."""
    if (not raw or not raw.startswith("/ui") or raw.startswith("//") or "\\" in raw
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw) or len(raw) > 2000):
        return "/ui/"
    return raw


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form (what the dashboard's forms send), first value of each field."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in ("", "application/x-www-form-urlencoded"):
        raise BadRequest("send the form URL-encoded")
    body = await read_body(request, MAX_FORM_BYTES)
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=100)
    except ValueError:
        raise BadRequest("too many form fields") from None
    return {k: v[0] for k, v in fields.items()}


def same_origin(request: Request) -> bool:
    """A browser's POST from another site names that site in Origin: refuse it. (An absent or
    "null" Origin, which privacy settings produce, is left to the CSRF token.) Behind a
    proxy, the host the browser saw is in Host or X-Forwarded-Host."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    seen = origin.split("://", 1)[-1].lower()
    hosts = {request.headers.get("host", "").lower()}
    hosts |= {h.strip().lower() for h in request.headers.get("x-forwarded-host", "").split(",")}
    return seen in hosts


def _set_session_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(sessions.COOKIE, value, max_age=sessions.LIFETIME, path="/",
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


async def login_page(request: Request) -> Response:
    st = _state(request)
    next_url = safe_next(request.query_params.get("next"))
    if sessions.current(request, st.token) is not None:
        return RedirectResponse(next_url, status_code=303)
    code = request.query_params.get("code")
    context = {"next": next_url, "code": None, "error": None,
               "signed_out": "signed_out" in request.query_params}
    if code:
        if sessions.sessions_of(request).code_valid(code, time.time()):
            context["code"] = code
        else:
            context["error"] = ("This sign-in link has expired or has been used. "
                                "Sign in with the admin token instead.")
    return render(request, "login.html", context)


async def login(request: Request) -> Response:
    st = _state(request)
    try:
        form = await read_form(request)
    except (BadRequest, PayloadTooLarge) as exc:
        return error_page(request, 400, "Cannot sign in", exc.message)
    next_url = safe_next(form.get("next"))
    context = {"next": next_url, "code": None, "error": None, "signed_out": False}
    if not same_origin(request):
        context["error"] = "This sign-in came from another site and was refused."
        return render(request, "login.html", context, status=403)
    code = form.get("code", "")
    token = form.get("token", "")
    ok = False
    if code:
        ok = sessions.sessions_of(request).spend_code(code, time.time())
    elif token:
        ok = hmac.compare_digest(token.strip().encode("utf-8", "replace"), st.token.encode())
    if not ok:
        await asyncio.sleep(FAILED_SIGN_IN_DELAY)
        context["error"] = ("This sign-in link has expired or has been used." if code else
                            "That is not the admin token of this server." if token else
                            "Enter the admin token.")
        return render(request, "login.html", context, status=401)
    value, session = sessions.issue(st.token)
    response = RedirectResponse(next_url, status_code=303, headers={"cache-control": "no-store"})
    _set_session_cookie(request, response, value)
    set_flash(response, session, "info", "Signed in.")
    return response


async def logout(request: Request) -> Response:
    st = _state(request)
    session = sessions.current(request, st.token)
    if session is not None:
        try:
            form = await read_form(request)
        except (BadRequest, PayloadTooLarge) as exc:
            return error_page(request, 400, "Cannot sign out", exc.message, session=session)
        if not sessions.csrf_ok(session, form.get(sessions.CSRF_FIELD)):
            return error_page(request, 403, "Not signed out",
                              "The form had no valid CSRF token; reload the page and try "
                              "again.", session=session)
        sessions.sessions_of(request).revoke(session, time.time())
    response = RedirectResponse("/ui/login?signed_out=1", status_code=303,
                                headers=SECURITY_HEADERS)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def sign_in_link(request: Request) -> Response:
    """POST /api/ui/sign-in-link (admin token): a one-time link that signs a browser in."""
    st = _state(request)
    require_token(request, st.token)
    lifetime: float = sessions.CODE_LIFETIME
    if await request.body():
        body = await read_json(request, 4096)
        raw = body.get("expires_in", lifetime)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not (
                0 < raw <= sessions.MAX_CODE_LIFETIME):
            raise BadRequest(f"'expires_in' is a number of seconds up to "
                             f"{sessions.MAX_CODE_LIFETIME}")
        lifetime = float(raw)
    now = time.time()
    code = sessions.sessions_of(request).mint_code(now, lifetime)
    return json_response({"path": f"/ui/login?code={code}", "expires_at": now + lifetime},
                         status=201)
