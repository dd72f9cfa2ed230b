"""The experiments API under /api/experiments."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.errors import BadRequest, NotFound
from champion.registry import reports
from champion.server.http import actor, json_response, read_json, require_token

if TYPE_CHECKING:
    from champion.server.app import State

MAX_JSON = 1024 * 1024


def _state(request: Request) -> State:
    st: State = request.app.state.champion
    require_token(request, st.token)
    return st


async def create(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_JSON)
    return json_response(await st.registry.experiments.create(body, actor(request)), 201)


async def find(request: Request) -> Response:
    st = _state(request)
    q = request.query_params
    return json_response({"experiments": await st.registry.experiments.find(
        q.get("endpoint"), q.get("status"))})


async def get(request: Request) -> Response:
    st = _state(request)
    exp_id = request.path_params["id"]
    data = await st.registry.experiments.get(exp_id)
    data["history"] = await st.registry.experiments.history(exp_id)
    return json_response(data)


async def transition(request: Request) -> Response:
    st = _state(request)
    action = request.path_params["action"]
    body: dict[str, Any] = {}
    if await request.body():
        body = await read_json(request, MAX_JSON)
    decision = body.get("decision")
    if decision is not None:
        if decision == "keep":
            decision = {"action": "keep"}
        elif isinstance(decision, dict) and ("promote" in decision or
                                             decision.get("action") == "keep"):
            pass
        else:
            raise BadRequest("'decision' is \"keep\" or {\"promote\": VARIANT}")
        if action != "stop":
            raise BadRequest("only stopping takes a decision")
    result = await st.registry.experiments.transition(
        request.path_params["id"], action, actor(request), str(body.get("reason", "")),
        decision)
    return json_response(result)


async def reweight(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_JSON)
    weights = body.get("weights")
    if not isinstance(weights, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in weights.values()):
        raise BadRequest("'weights' maps each variant to a number")
    return json_response(await st.registry.experiments.reweight(
        request.path_params["id"], weights, actor(request), str(body.get("reason", ""))))


async def report(request: Request) -> Response:
    st = _state(request)
    exp_id = request.path_params["id"]
    row = await asyncio.to_thread(st.store.get_experiment, exp_id)
    if row is None:
        raise NotFound(f"no experiment {exp_id!r}")
    return json_response(await reports.build(st.store, row, st.shadows.status(exp_id)))


def routes() -> list[Route]:
    return [
        Route("/api/experiments", create, methods=["POST"]),
        Route("/api/experiments", find, methods=["GET"]),
        Route("/api/experiments/{id}", get, methods=["GET"]),
        Route("/api/experiments/{id}/report", report, methods=["GET"]),
        Route("/api/experiments/{id}/weights", reweight, methods=["POST", "PUT"]),
        Route("/api/experiments/{id}/{action}", transition, methods=["POST"]),
    ]
