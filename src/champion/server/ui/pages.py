"""The dashboard's pages. Each reads the JSON API in process (:mod:`.api`) and renders what
changes rarely (names, versions, aliases, history); the page's script fetches the figures
(traffic, errors, latency, reports) from the same API and refreshes them every few seconds.

Nothing here knows any experiment strategy: an experiment's fields are shown as the API gives
them, and its report is drawn by the script from the report's own presentation section.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from champion.errors import NotFound
from champion.server.ui import diff
from champion.server.ui.api import ApiError, call
from champion.server.ui.guard import page
from champion.server.ui.render import render
from champion.server.ui.session import Session

#: The experiment fields shown in the summary; every other field is listed as a setting.
EXPERIMENT_SUMMARY = ("id", "name", "endpoint", "strategy", "status", "variants", "control",
                      "created_at", "created_by", "started_at", "stopped_at", "decision",
                      "history")
#: Lifecycle order of the experiments list (any other status follows, alphabetically).
STATUS_ORDER = ("running", "paused", "draft", "stopped")
#: What a person may do to an experiment in each lifecycle state.
ACTIONS_BY_STATUS = {"draft": ("start", "stop"), "running": ("pause", "stop"),
                     "paused": ("resume", "stop")}


@page
async def deployments(request: Request, session: Session) -> Response:
    listing, running, paused = await asyncio.gather(
        call(request, session, "GET", "/api/deployments"),
        call(request, session, "GET", "/api/experiments", query={"status": "running"}),
        call(request, session, "GET", "/api/experiments", query={"status": "paused"}))
    active = {e["endpoint"]: e for e in paused["experiments"] + running["experiments"]}
    return render(request, "deployments.html", {
        "deployments": listing["deployments"], "active": active, "page": "deployments",
    }, session=session)


def _int(raw: str | None) -> int | None:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        return None
    return int(raw)


@page
async def deployment(request: Request, session: Session) -> Response:
    name = request.path_params["name"]
    base = f"/api/deployments/{name}"
    info = await call(request, session, "GET", base)
    history, experiments = await asyncio.gather(
        call(request, session, "GET", base + "/history", query={"limit": 200}),
        call(request, session, "GET", "/api/experiments", query={"endpoint": name}))
    numbers = [v["number"] for v in info["versions"]]
    aliases: dict[str, int] = info["aliases"]
    production = aliases.get("production")
    latest = aliases.get("latest", numbers[-1] if numbers else None)
    q = request.query_params
    shown = _int(q.get("source"))
    if shown not in numbers:
        shown = production if production in numbers else latest
    b = _int(q.get("b"))
    if b not in numbers:
        b = latest
    a = _int(q.get("a"))
    if a not in numbers:
        earlier = [n for n in numbers if b is not None and n < b]
        a = production if production in numbers and production != b else (
            earlier[-1] if earlier else b)
    wanted = sorted({n for n in (shown, a, b) if n is not None})
    details = dict(zip(wanted, await asyncio.gather(
        *(call(request, session, "GET", f"{base}/versions/{n}") for n in wanted)), strict=True))
    compared = (diff.versions(name, details[a], details[b])
                if a is not None and b is not None else None)
    by_version: dict[int, list[str]] = {}
    for alias, number in sorted(aliases.items()):
        by_version.setdefault(number, []).append(alias)
    return render(request, "deployment.html", {
        "page": "deployment", "info": info, "name": name, "numbers": numbers,
        "aliases": aliases, "by_version": by_version, "production": production,
        "latest": latest, "history": history["history"],
        "experiments": experiments["experiments"],
        "shown": details.get(shown) if shown is not None else None, "a": a, "b": b,
        "diff": compared,
    }, session=session)


def _by_status(experiments: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(experiments, key=lambda e: -(e.get("created_at") or 0)):
        groups.setdefault(str(e.get("status")), []).append(e)
    order = [s for s in STATUS_ORDER if s in groups]
    order += sorted(s for s in groups if s not in STATUS_ORDER)
    return [(s, groups[s]) for s in order]


def list_revision(experiments: list[dict[str, Any]]) -> str:
    """What the list shows, in short (experiments.js computes the same from the API)."""
    return ",".join(sorted(f"{e.get('id')}:{e.get('status')}" for e in experiments))


@page
async def experiments(request: Request, session: Session) -> Response:
    endpoint = request.query_params.get("endpoint") or None
    status = request.query_params.get("status") or None
    found = await call(request, session, "GET", "/api/experiments",
                       query={"endpoint": endpoint, "status": status})
    context = {
        "page": "experiments", "groups": _by_status(found["experiments"]),
        "endpoint": endpoint, "status": status, "revision": list_revision(found["experiments"]),
    }
    if request.query_params.get("fragment") == "list":
        return render(request, "_experiment_list.html", context, session=session)
    return render(request, "experiments.html", context, session=session)


def experiment_context(data: dict[str, Any]) -> dict[str, Any]:
    """What the experiment templates show: the summary fields, then every other field."""
    settings = {k: v for k, v in data.items() if k not in EXPERIMENT_SUMMARY}
    variants = data.get("variants") if isinstance(data.get("variants"), dict) else {}
    # A setting that maps each variant to a value (weights, say) is a column of the variants.
    per_variant = [k for k, v in settings.items()
                   if isinstance(v, dict) and v and variants and set(v) <= set(variants)
                   and all(_is_scalar(x) for x in v.values())]
    history = data.get("history") or []
    return {
        "e": data,
        "settings": settings,
        "per_variant": per_variant,
        "settings_rest": {k: v for k, v in settings.items() if k not in per_variant},
        "history": history,
        "actions": ACTIONS_BY_STATUS.get(str(data.get("status")), ()),
        "revision": f"{data.get('status')}:{len(history)}",
    }


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


@page
async def experiment(request: Request, session: Session) -> Response:
    exp_id = request.path_params["id"]
    try:
        data = await call(request, session, "GET", f"/api/experiments/{exp_id}")
    except ApiError as exc:
        if exc.status == 404:
            raise NotFound(f"There is no experiment {exp_id!r}.") from None
        raise
    context = {"page": "experiment", **experiment_context(data)}
    if request.query_params.get("fragment") == "fields":
        return render(request, "_experiment_fields.html", context, session=session)
    return render(request, "experiment.html", context, session=session)


@page
async def not_found(request: Request, session: Session) -> Response:
    raise NotFound(f"The dashboard has no page {request.url.path}.")
