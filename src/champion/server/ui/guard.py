"""What every dashboard route shares: a valid session or a redirect to sign in; for changes,
the session's CSRF token and this server's origin; errors shown as pages, never a traceback."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from champion.errors import BadRequest, ChampionError, PayloadTooLarge
from champion.server.ui import session as sessions
from champion.server.ui.api import ApiError
from champion.server.ui.login import read_form, same_origin
from champion.server.ui.render import error_page, login_redirect

log = logging.getLogger("champion.server.ui")

Page = Callable[[Request, sessions.Session], Awaitable[Response]]
Action = Callable[[Request, sessions.Session, dict[str, str]], Awaitable[Response]]

TITLES = {400: "Bad request", 401: "Not signed in", 403: "Refused", 404: "Not found",
          405: "Method not allowed", 409: "Conflict"}


def _session(request: Request) -> sessions.Session | None:
    return sessions.current(request, request.app.state.champion.token)


async def _shown(request: Request, session: sessions.Session,
                 run: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await run()
    except ApiError as exc:
        if exc.status == 401:
            return login_redirect(request)
        return error_page(request, exc.status, TITLES.get(exc.status, "Error"), exc.message,
                          session=session)
    except ChampionError as exc:
        return error_page(request, exc.status_code, TITLES.get(exc.status_code, "Error"),
                          exc.message, session=session)
    except Exception:
        ref = uuid.uuid4().hex[:12]
        log.exception("dashboard error %s on %s %s", ref, request.method, request.url.path)
        return error_page(request, 500, "Something went wrong",
                          f"The server could not show this page (reference {ref} in its "
                          "log).", session=session)


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A GET page: shown to a signed-in browser, else a redirect to the sign-in form."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        session = _session(request)
        if session is None:
            return login_redirect(request)
        started = time.perf_counter()
        response = await _shown(request, session, lambda: handler(request, session))
        response.headers["server-timing"] = (
            f"page;dur={(time.perf_counter() - started) * 1000:.1f}")
        return response

    return wrapped


def action(handler: Action) -> Callable[[Request], Awaitable[Response]]:
    """A POST from a dashboard form: signed in, same origin, with the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        session = _session(request)
        if session is None:
            return login_redirect(request)
        try:
            form = await read_form(request)
        except (BadRequest, PayloadTooLarge) as exc:
            return error_page(request, 400, "Bad request", exc.message, session=session)
        if not same_origin(request):
            return error_page(request, 403, "Refused",
                              "This change was sent from another site.", session=session)
        if not sessions.csrf_ok(session, form.get(sessions.CSRF_FIELD)):
            return error_page(request, 403, "Refused",
                              "The form had no valid CSRF token, so nothing was changed. "
                              "Reload the page and try again.", session=session)
        return await _shown(request, session, lambda: handler(request, session, form))

    return wrapped
