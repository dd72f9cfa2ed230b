"""The experiments API under /api/experiments, and the registered strategies."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.errors import BadRequest, NotFound
from champion.registry import reports
from champion.server.http import actor, json_response, read_json, require_token
from champion.strategies import STRATEGIES

if TYPE_CHECKING:
    from champion.server.state import State

MAX_JSON = 1024 * 1024
STATUSES = ("draft", "running", "paused", "stopped")


def _state(request: Request) -> State:
    st: State = request.app.state.champion
    require_token(request, st.token)
    return st


async def _body(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    body: dict[str, Any] = await read_json(request, MAX_JSON)
    return body


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise BadRequest("'reason' is a string", field="reason")
    return reason[:2000]


async def strategies(request: Request) -> Response:
    """GET /api/strategies: every registered strategy with its settings' schema."""
    _state(request)
    return json_response({"strategies": [
        {"name": s.name, "summary": s.summary, "min_variants": s.min_variants,
         "max_variants": s.max_variants, "settings": s.schema()}
        for s in sorted(STRATEGIES.values(), key=lambda s: s.name)]})


async def create(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_JSON)
    return json_response(await st.registry.experiments.create(body, actor(request)), 201)


async def find(request: Request) -> Response:
    st = _state(request)
    q = request.query_params
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"'status' is one of {', '.join(STATUSES)}")
    return json_response({"experiments": await st.registry.experiments.find(
        q.get("endpoint"), status)})


async def get(request: Request) -> Response:
    st = _state(request)
    exp_id = request.path_params["id"]
    data = await st.registry.experiments.get(exp_id)
    data["history"] = await st.registry.experiments.history(exp_id)
    return json_response(data)


async def transition(request: Request) -> Response:
    st = _state(request)
    action = request.path_params["action"]
    body = await _body(request)
    exps = st.registry.experiments
    who = actor(request)
    if action == "promote":
        variant = body.get("variant")
        if variant is not None and not isinstance(variant, str):
            raise BadRequest("'variant' names the variant to promote")
        return json_response(await exps.promote(request.path_params["id"], variant, who,
                                                _reason(body)))
    if action == "rollback":
        return json_response(await exps.rollback(request.path_params["id"], who,
                                                 _reason(body)))
    decision = body.get("decision")
    if decision is not None:
        if decision == "keep":
            decision = {"action": "keep"}
        elif isinstance(decision, dict) and ("promote" in decision or
                                             decision.get("action") in ("keep", "rollback")):
            pass
        else:
            raise BadRequest("'decision' is \"keep\" or {\"promote\": VARIANT}")
        if action != "stop":
            raise BadRequest("only stopping takes a decision")
    result = await exps.transition(request.path_params["id"], action, who, _reason(body),
                                   decision)
    return json_response(result)


async def reweight(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_JSON)
    weights = body.get("weights")
    if not isinstance(weights, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in weights.values()):
        raise BadRequest("'weights' maps each variant to a number")
    return json_response(await st.registry.experiments.reweight(
        request.path_params["id"], weights, actor(request), _reason(body)))


async def update(request: Request) -> Response:
    """PATCH /api/experiments/{id}: add or remove variants, change the strategy's settings
    (as far as the strategy allows)."""
    st = _state(request)
    body = await read_json(request, MAX_JSON)
    return json_response(await st.registry.experiments.update(
        request.path_params["id"], body, actor(request)))


async def _row(st: State, exp_id: str) -> dict[str, Any]:
    row = await asyncio.to_thread(st.store.get_experiment, exp_id)
    if row is None:
        raise NotFound(f"no experiment {exp_id!r}")
    return row


async def report(request: Request) -> Response:
    st = _state(request)
    row = await _row(st, request.path_params["id"])
    return json_response(await reports.build(st.store, row, st.shadows.status(row["id"])))


async def timeline(request: Request) -> Response:
    """GET /api/experiments/{id}/timeline?since=TS: the points the controller kept."""
    st = _state(request)
    row = await _row(st, request.path_params["id"])
    raw = request.query_params.get("since")
    since: float | None = None
    if raw:
        try:
            since = float(raw)
        except ValueError:
            raise BadRequest("'since' is a Unix time in seconds") from None
        if not math.isfinite(since):
            raise BadRequest("'since' is a Unix time in seconds")
    points = await asyncio.to_thread(st.store.snapshots, row["id"], since)
    return json_response({"experiment": row["id"], "interval": st.config.timeline_interval,
                          "points": points})


def routes() -> list[Route]:
    return [
        Route("/api/strategies", strategies, methods=["GET"]),
        Route("/api/experiments", create, methods=["POST"]),
        Route("/api/experiments", find, methods=["GET"]),
        Route("/api/experiments/{id}", get, methods=["GET"]),
        Route("/api/experiments/{id}", update, methods=["PATCH"]),
        Route("/api/experiments/{id}/report", report, methods=["GET"]),
        Route("/api/experiments/{id}/timeline", timeline, methods=["GET"]),
        Route("/api/experiments/{id}/weights", reweight, methods=["POST", "PUT"]),
        Route("/api/experiments/{id}/{action}", transition, methods=["POST"]),
    ]
