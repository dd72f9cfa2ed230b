"""The web dashboard under /ui/: Jinja pages, a little plain JavaScript and vendored uPlot.

Modules: :mod:`.session` (the signed session cookie, CSRF, sign-in codes), :mod:`.login`
(sign in and out), :mod:`.guard` (what every route checks), :mod:`.api` (pages read and
change things through the JSON API, in process), :mod:`.pages`, :mod:`.actions`,
:mod:`.diff` (two versions compared), :mod:`.render` (templates, headers, static files).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from champion.server.ui import actions, login, pages
from champion.server.ui.render import STATIC, Assets


async def home(request: Request) -> Response:
    """GET /: the dashboard."""
    return RedirectResponse("/ui/", status_code=307)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/ui", home, methods=["GET"]),
        Route("/ui/", pages.deployments, methods=["GET"]),
        Route("/ui/login", login.login_page, methods=["GET"]),
        Route("/ui/login", login.login, methods=["POST"]),
        Route("/ui/logout", login.logout, methods=["POST"]),
        Route("/ui/deployments/{name}", pages.deployment, methods=["GET"]),
        Route("/ui/deployments/{name}/promote", actions.promote, methods=["POST"]),
        Route("/ui/deployments/{name}/rollback", actions.rollback, methods=["POST"]),
        Route("/ui/deployments/{name}/alias", actions.move_alias, methods=["POST"]),
        Route("/ui/experiments", pages.experiments, methods=["GET"]),
        Route("/ui/experiments/{id}", pages.experiment, methods=["GET"]),
        Route("/ui/experiments/{id}/{action}", actions.experiment, methods=["POST"]),
        Mount("/ui/static", app=Assets(directory=STATIC), name="ui-static"),
        Route("/ui/{rest:path}", pages.not_found, methods=["GET"]),
        Route("/api/ui/sign-in-link", login.sign_in_link, methods=["POST"]),
    ]


__all__ = ["routes"]
