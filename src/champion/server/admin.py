"""The admin API under /api/: deployments, versions, aliases, artifacts, logs.

Every route needs the admin token. Registry writes are committed before the answer.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.deployment_settings import check_config
from champion.errors import BadRequest, ChampionError, DeployError, NotFound
from champion.names import check_name
from champion.registry.manifest import check_manifest_shape
from champion.runtime.pool import PoolSpec
from champion.server import environments
from champion.server.http import (
    MAX_VERSION,
    actor,
    check_ref,
    json_response,
    read_json,
    require_token,
)
from champion.store.artifacts import valid_hash

if TYPE_CHECKING:
    from champion.server.state import State

Handler = Callable[[Request], Awaitable[Response]]

MAX_ADMIN_JSON = 64 * 1024 * 1024
MAX_ARTIFACT = 4 * 1024 * 1024 * 1024


def _state(request: Request, scope: str = "admin") -> State:
    st: State = request.app.state.champion
    require_token(request, st.token, scope)
    return st


def _int(request: Request, key: str, default: int | None = None, *, low: int = 0,
         high: int = 1_000_000) -> int | None:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {key!r} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {key!r} must be between {low} and {high}")
    return value


def _version_number(raw: Any) -> int:
    """A version number from a body: a positive integer (or its ASCII digits) the store's
    32-bit column holds."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 10:
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_VERSION:
        raise BadRequest(f"'version' must be an integer from 1 to {MAX_VERSION}")
    return raw


# ------------------------------------------------------------------ deployments


async def list_deployments(request: Request) -> Response:
    st = _state(request, "deploy")
    rows = await asyncio.to_thread(st.store.list_deployments)
    return json_response({
        "deployments": [
            {
                "name": r["name"],
                "created_at": r["created_at"],
                "created_by": r["created_by"],
                "latest": r["latest"],
                "production": r["production"],
                "versions": r["version_count"] or 0,
                "config": r["config"] or {},
            }
            for r in rows
        ]
    })


async def get_deployment(request: Request) -> Response:
    st = _state(request, "deploy")
    return json_response(await st.registry.deployment(request.path_params["name"]))


async def delete_deployment(request: Request) -> Response:
    st = _state(request)
    name = request.path_params["name"]
    await st.registry.delete(name, actor(request))
    await st.runtime.stop_deployment(name)
    return json_response({"deleted": name})


async def configure_deployment(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_ADMIN_JSON)
    config = await st.registry.configure(request.path_params["name"], body, actor(request))
    return json_response({"name": request.path_params["name"], "config": config})


async def list_versions(request: Request) -> Response:
    st = _state(request, "deploy")
    info = await st.registry.deployment(request.path_params["name"])
    return json_response({"deployment": info["name"], "aliases": info["aliases"],
                          "versions": info["versions"]})


async def get_version(request: Request) -> Response:
    st = _state(request, "deploy")
    name = request.path_params["name"]
    ref = check_ref(name, request.path_params["ref"])
    target = await st.registry.resolve(name, ref)
    return json_response(await st.registry.version(name, target.version))


async def deploy(request: Request) -> Response:
    """Create the next version from an uploaded manifest (artifacts uploaded first)."""
    st = _state(request, "deploy")
    name = check_name(request.path_params["name"])
    body = await read_json(request, MAX_ADMIN_JSON)
    manifest = check_manifest_shape(body.get("manifest"))
    config = check_config(body.get("config"))
    if not isinstance(body.get("validate", True), bool):
        raise BadRequest("'validate' must be true or false")
    if not isinstance(body.get("source", ""), str):
        raise BadRequest("'source' must be a string (the version's source code)")
    fields = {
        "function_name": manifest["function_name"],
        "source": body.get("source", ""),
        "python_version": str(manifest.get("python_version", "")),
        "packages": manifest.get("packages", {}),
        "manifest": manifest,
        "origin": body.get("origin") if isinstance(body.get("origin"), dict) else None,
    }
    plan = await asyncio.to_thread(environments.plan_deploy, manifest)
    if plan is not None:  # its own environment: built by a job, 202 at once
        return await environments.deploy(st, request, name, manifest, fields, config, plan,
                                         bool(body.get("validate", True)))
    warnings = await asyncio.to_thread(st.registry.check_manifest, manifest)
    workers = int(config.get("workers", st.config.workers))
    timeout = float(config.get("timeout", st.config.timeout))
    started = time.perf_counter()
    provisional = (name, -int(uuid.uuid4().int % 1_000_000_000) - 1)
    if body.get("validate", True):
        spec = PoolSpec(key=provisional, manifest=manifest, workers=workers, timeout=timeout,
                        idle_timeout=config.get("idle_timeout"),
                        max_workers=config.get("max_workers", st.config.max_workers or None))
        try:
            await st.runtime.warm(spec)
        except ChampionError as exc:
            await st.runtime.stop(provisional)
            raise DeployError(f"cannot deploy {name!r}: the server could not load it: "
                              f"{exc.message}", **exc.detail) from None
    number, production = await st.registry.add_version(
        name, manifest, fields, config, actor(request)
    )
    target = await st.registry.resolve(name, str(number))
    if body.get("validate", True):
        st.runtime.adopt(provisional, st.executor.spec_for(target))
    return json_response(
        {
            "deployment": name,
            "version": number,
            "production": production,
            "aliases": (await st.registry.version(name, number))["aliases"],
            "url": f"/v1/{name}/{number}",
            "endpoint": f"/v1/{name}",
            "load_seconds": round(time.perf_counter() - started, 3),
            "status": "ready",
            "warnings": warnings,
        },
        status=201,
    )


# ------------------------------------------------------------------ aliases


async def list_aliases(request: Request) -> Response:
    st = _state(request, "deploy")
    info = await st.registry.deployment(request.path_params["name"])
    return json_response({"deployment": info["name"], "aliases": info["aliases"]})


async def set_alias(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_ADMIN_JSON)
    name, alias = request.path_params["name"], request.path_params["alias"]
    version = _version_number(body.get("version"))
    before = await st.registry.set_alias(name, alias, version, actor(request),
                                         str(body.get("reason", "")))
    return json_response({"deployment": name, "alias": alias, "version": version,
                          "previous": before})


async def delete_alias(request: Request) -> Response:
    st = _state(request)
    name, alias = request.path_params["name"], request.path_params["alias"]
    await st.registry.delete_alias(name, alias, actor(request))
    return json_response({"deployment": name, "deleted": alias})


async def promote(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_ADMIN_JSON)
    name = request.path_params["name"]
    version = _version_number(body.get("version"))
    before = await st.registry.set_alias(name, "production", version, actor(request),
                                         str(body.get("reason", "promote")))
    return json_response({"deployment": name, "production": version, "previous": before})


async def rollback(request: Request) -> Response:
    st = _state(request)
    body = await read_json(request, MAX_ADMIN_JSON) if await request.body() else {}
    name = request.path_params["name"]
    raw = body.get("version")
    version = None if raw is None else _version_number(raw)
    before, after = await st.registry.rollback(name, version, actor(request))
    return json_response({"deployment": name, "production": after, "previous": before})


async def history(request: Request) -> Response:
    st = _state(request)
    name = request.path_params["name"]
    await st.registry.deployment(name)
    limit = _int(request, "limit", 100, low=1, high=10_000) or 100
    rows = await asyncio.to_thread(st.store.history, name, limit)
    return json_response({"deployment": name, "history": rows})


# ------------------------------------------------------------------ artifacts


async def missing_artifacts(request: Request) -> Response:
    st = _state(request, "deploy")
    body = await read_json(request, MAX_ADMIN_JSON)
    hashes = body.get("hashes")
    if not isinstance(hashes, list) or not all(isinstance(h, str) and valid_hash(h)
                                               for h in hashes):
        raise BadRequest("'hashes' must be a list of SHA-256 hex digests")
    return json_response({"missing": await asyncio.to_thread(st.store.artifacts.missing,
                                                             hashes)})


async def get_artifact(request: Request) -> Response:
    """GET /api/artifacts/{digest}: an artifact's bytes (champion export reads them)."""
    st = _state(request, "deploy")
    digest = request.path_params["digest"]
    if not valid_hash(digest):
        raise BadRequest("an artifact is named by its SHA-256 hex digest")
    if not await asyncio.to_thread(st.store.artifacts.has, digest):
        raise NotFound(f"no artifact {digest}")
    data = await asyncio.to_thread(st.store.artifacts.get, digest)
    return Response(data, media_type="application/octet-stream")


async def put_artifact(request: Request) -> Response:
    st = _state(request, "deploy")
    digest = request.path_params["digest"]
    if not valid_hash(digest):
        raise BadRequest("an artifact is named by its SHA-256 hex digest")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ARTIFACT:
            raise BadRequest("artifact over the 4 GiB limit")
        chunks.append(chunk)
    try:
        await asyncio.to_thread(st.store.artifacts.put_verified, digest, chunks)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return json_response({"sha256": digest, "bytes": size}, status=201)


# ------------------------------------------------------------------ logs and runtime


async def logs(request: Request) -> Response:
    """GET /api/deployments/{name}/logs: newest first; oldest first after a cursor."""
    from champion.server.observe import log_filters

    st = _state(request)
    name = request.path_params["name"]
    limit = _int(request, "limit", 100, low=1, high=10_000) or 100
    filters = log_filters(request)
    after_raw = request.query_params.get("after")
    after: tuple[float, str] | None = None
    if after_raw:
        ts, _, rid = after_raw.partition(",")
        try:
            after = (float(ts), rid)
        except ValueError:
            after = None
        if after is None or not math.isfinite(after[0]) or len(rid) > 64 or "\x00" in rid:
            raise BadRequest("'after' must be 'TIMESTAMP,REQUEST_ID'")
    with_feedback = request.query_params.get("feedback", "").lower() in ("1", "true", "yes")
    rows = await asyncio.to_thread(
        functools.partial(st.store.query_requests, name, limit, after=after,
                          newest_first=after is None, with_feedback=with_feedback, **filters)
    )
    if not rows:
        await st.registry.deployment(name)  # 404 for an unknown deployment
    return json_response({"deployment": name, "requests": rows})


async def runtime_status(request: Request) -> Response:
    st = _state(request)
    return json_response({"pools": st.runtime.status(), "events": st.events.status()})


def routes() -> list[Route]:
    return [
        Route("/api/deployments", list_deployments, methods=["GET"]),
        Route("/api/deployments/{name}", get_deployment, methods=["GET"]),
        Route("/api/deployments/{name}", delete_deployment, methods=["DELETE"]),
        Route("/api/deployments/{name}", configure_deployment, methods=["PATCH"]),
        Route("/api/deployments/{name}/versions", list_versions, methods=["GET"]),
        Route("/api/deployments/{name}/versions", deploy, methods=["POST"]),
        Route("/api/deployments/{name}/versions/{ref}", get_version, methods=["GET"]),
        Route("/api/deployments/{name}/aliases", list_aliases, methods=["GET"]),
        Route("/api/deployments/{name}/aliases/{alias}", set_alias, methods=["PUT"]),
        Route("/api/deployments/{name}/aliases/{alias}", delete_alias, methods=["DELETE"]),
        Route("/api/deployments/{name}/promote", promote, methods=["POST"]),
        Route("/api/deployments/{name}/rollback", rollback, methods=["POST"]),
        Route("/api/deployments/{name}/history", history, methods=["GET"]),
        Route("/api/deployments/{name}/logs", logs, methods=["GET"]),
        Route("/api/artifacts/missing", missing_artifacts, methods=["POST"]),
        Route("/api/artifacts/{digest}", put_artifact, methods=["PUT"]),
        Route("/api/artifacts/{digest}", get_artifact, methods=["GET"]),
        Route("/api/runtime", runtime_status, methods=["GET"]),
    ]
