"""Modelbit's REST shape: ``POST /v1/{deployment}/{branch}/{version|alias}``.

Modelbit's client (and code written against Modelbit's REST API) calls
``/v1/NAME/BRANCH/VERSION`` and reads errors as ``{"error": "<text>"}``. This route serves
the same deployments as ``/v1/NAME/VERSION`` with two differences in the answer to a
failure:

* the body is ``{"error": "<message>", "champion_error": {type, message, request_id, …}}``:
  ``error`` is the string Modelbit's client prints and raises (it splits it by lines), and
  champion's structured error stays beside it;
* a model's own exception answers **422** instead of 500. Modelbit's client retries 429,
  500, 502, 503 and 504 five times with backoff (about 30 s), which would run a raising
  model six times; it does not retry 422. Timeouts (504), crashed workers (502) and versions
  not ready (503) keep their statuses: retrying them is what those retries are for.

The branch is accepted as Modelbit spells it (``/`` as ``~``); champion has one namespace,
served as branch ``main``; any other branch is a 404 saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.errors import ChampionError, NotFound
from champion.server.http import check_ref

MAIN_BRANCH = "main"
MODEL_ERROR_STATUS = 422  # not in Modelbit's client's retry list (429, 500, 502, 503, 504)

Handler = Callable[[Request], Awaitable[Response]]


def modelbit_body(error: dict[str, Any]) -> dict[str, Any]:
    """The error body of the Modelbit-compatible route (one place, pinned by a test)."""
    return {"error": str(error.get("message") or error.get("type") or "error"),
            "champion_error": error}


def modelbit_status(status: int, error: dict[str, Any]) -> int:
    return MODEL_ERROR_STATUS if error.get("type") == "model_error" else status


def _error(exc: ChampionError) -> Response:
    err = exc.to_dict()["error"]
    return Response(orjson.dumps(modelbit_body(err)), modelbit_status(exc.status_code, err),
                    media_type="application/json")


def to_modelbit(response: Response) -> Response:
    """Champion's answer, reshaped for Modelbit's client when it is an error."""
    if response.status_code < 400:
        return response
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return response
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(orjson.dumps(modelbit_body(err)), modelbit_status(response.status_code,
                    err), headers=headers)


def routes(infer: Handler) -> list[Route]:
    """The route, over champion's inference handler ``infer``."""

    async def infer_on_branch(request: Request) -> Response:
        name = request.path_params["name"]
        branch = request.path_params["branch"].replace("~", "/")
        ref = request.path_params["ref"]
        if branch != MAIN_BRANCH:
            return _error(NotFound(
                f"deployment {name!r} has no branch {branch!r}: champion serves one set of "
                f"deployments, as branch {MAIN_BRANCH!r} (/v1/{name}/{MAIN_BRANCH}/{ref}, the "
                f"same as /v1/{name}/{ref})", deployment=name, branch=branch))
        try:
            check_ref(name, ref)
        except ChampionError as exc:
            return _error(exc)
        request.scope["path_params"] = {"name": name, "ref": ref}
        return to_modelbit(await infer(request))

    return [Route("/v1/{name}/{branch}/{ref}", infer_on_branch, methods=["POST"])]
