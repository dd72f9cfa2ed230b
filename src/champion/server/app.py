"""The ASGI application: its routes, its error handlers and its life (open, serve, close).

The ideas live in their own modules: the state container (``state``), running calls on
workers (``execution``), the inference path (``inference``), health (``health``), the admin,
experiment and observation APIs, and the background loops (``champion.controller``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import uuid
from collections.abc import AsyncIterator

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.controller import Controller
from champion.errors import ChampionError, MethodNotAllowed, NotFound
from champion.events import EventWriter, RequestIds
from champion.registry import Registry
from champion.runtime import gcsettle
from champion.runtime.base import create_runtime
from champion.runtime.envs import EnvManager
from champion.runtime.pool import Limits
from champion.server import (
    admin,
    environments,
    experiments,
    health,
    modelbit,
    observe,
    openapi,
    tokens,
    ui,
)
from champion.server.auth import AuditLog
from champion.server.execution import Executor
from champion.server.http import error_response
from champion.server.inference import InferenceFastPath, infer
from champion.server.shadow import ShadowRunner
from champion.server.state import State, load_or_create_token
from champion.settings import Config
from champion.store import Store
from champion.store.failures import STORE_EXCEPTIONS, store_failure

log = logging.getLogger("champion.server")


def load_strategy_modules(modules: str) -> list[str]:
    """Import the operator's strategy plugin modules (each registers its strategies)."""
    loaded = []
    for name in (m.strip() for m in modules.split(",")):
        if name:
            importlib.import_module(name)
            loaded.append(name)
    return loaded


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 / 405 (no such route, wrong method) in the one error shape."""
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    err: ChampionError
    if exc.status_code == 404:
        err = NotFound(f"no route for {where}")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        err = MethodNotAllowed(f"method not allowed: {where} (allowed: {allowed})")
    else:
        err = ChampionError(str(exc.detail))
        err.status_code = exc.status_code
    return error_response(err, dict(exc.headers or {}))


async def _champion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChampionError)
    return error_response(exc)


async def _store_failed(request: Request, exc: Exception) -> Response:
    """The store failing (down: 503; disk full: 507), in the one error shape; the driver's
    text goes to the server log only. Anything else of these classes is a bug of ours."""
    err = store_failure(exc)
    if err is None:
        return await _unexpected(request, exc)
    log.warning("%s %s: %s: %s", request.method, request.url.path, err.type_name, exc)
    return error_response(err)


async def _unexpected(request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
    # Starlette re-raises after this answer and the server then drops the connection: say
    # so, or a keep-alive client sends its next request into a closed socket and loses it.
    return error_response(ChampionError(f"internal server error (reference {ref})"),
                          {"connection": "close"})


async def _openapi(request: Request) -> Response:
    """GET /openapi.json: the OpenAPI 3.1 document of this app's routes."""
    doc = getattr(request.app.state, "openapi", None)
    if doc is None:
        doc = request.app.state.openapi = orjson.dumps(openapi.document(request.app.routes))
    return Response(doc, media_type="application/json")


def _gauges(st: State) -> dict[str, tuple[str, str, float]]:
    events = st.events.status()
    pools = st.runtime.status()
    return {
        "champion_events_queued": ("gauge", "Request events waiting to be written.",
                                   events["queued"]),
        "champion_events_dropped": ("counter", "Request events dropped (store far behind).",
                                    events["dropped"]),
        "champion_workers": ("gauge", "Worker processes running.",
                             sum(len(p["workers"]) for p in pools)),
        "champion_worker_restarts": ("counter", "Worker processes replaced after a crash "
                                     "or timeout.", sum(p["restarts"] for p in pools)),
        "champion_controller_leader": ("gauge", "1 when this process runs the controller.",
                                       1.0 if st.controller.lease.held else 0.0),
    }


async def _stop_deleted(st: State) -> None:
    """After another process deleted a deployment: stop its workers here too."""
    live = await st.registry.names()
    for key in [k for k in st.runtime.versions() if k[0] not in live]:
        await st.runtime.stop(key)


def app_from_environment() -> InferenceFastPath:
    """The app of one of several replicas started by ``champion serve --replicas N``: its
    settings come from the CHAMPION_* environment the parent set."""
    return create_app(Config.load(), announce_token=False)


def create_app(config: Config, *, announce_token: bool = True) -> InferenceFastPath:
    """Build the application; the store opens and the background tasks start on startup."""
    load_strategy_modules(config.strategy_modules)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        data = config.data_path
        store = await asyncio.to_thread(Store.open, data, config.database_url,
                                        config.artifacts_path)
        token, created = load_or_create_token(config)
        if created and announce_token:
            print(
                f"champion: admin token (shown once; kept in {data / 'token'}):\n  {token}",
                flush=True,
            )
        runtime = create_runtime(
            config.runtime, store.artifacts.root, idle_timeout=config.idle_timeout,
            fork_server=config.fork_server,
            preload=tuple(m.strip() for m in config.preload_modules.split(",") if m.strip()),
            ray_address=config.ray_address, ray_replica_cpus=config.ray_replica_cpus,
            limits=Limits(max_answer_bytes=config.max_answer_bytes,
                          memory_mb=config.worker_memory_mb,
                          poll_us=config.worker_poll_us),
            scale_down_seconds=config.scale_down_seconds)
        st = State(
            config=config,
            store=store,
            registry=Registry(store),
            runtime=runtime,
            executor=Executor(runtime, config, EnvManager(
                data, budget_bytes=int(config.env_budget_gb * 1024**3),
                timeout=config.build_timeout)),
            events=EventWriter(store, config.log_flush_ms),
            shadow_events=EventWriter(store, config.log_flush_ms,
                                      insert=store.insert_shadow_events),
            ids=RequestIds(store.get_meta("secret") or ""),
            token=token,
        )
        if st.envs is not None:
            st.envs.in_use = st.runtime.env_ids
        st.shadows = ShadowRunner(st.executor.run, st.shadow_events,
                                  payload_cap=config.log_payload_bytes)
        st.controller = Controller(st.registry, config, st.shadows.status,
                                   on_registry_change=lambda: _stop_deleted(st))
        await st.registry.refresh(force=True)
        st.runtime.start()
        st.events.start()
        st.shadow_events.start()
        st.controller.start()
        st.tasks.append(asyncio.create_task(environments.resume(st)))
        st.telemetry.gauges = lambda: _gauges(st)
        await tokens.reload(st)
        st.tasks.append(asyncio.create_task(tokens.poll(st)))
        app.state.champion = st
        gcsettle.settle()  # started: the collector leaves the start-up heap alone
        try:
            yield
        finally:
            for task in st.tasks:
                task.cancel()
            await st.controller.close()
            await st.shadows.close()
            await st.events.close()
            await st.shadow_events.close()
            await st.runtime.close()
            await asyncio.to_thread(store.close)

    routes = [  # inference first: Starlette tries the routes in order
        Route("/v1/{name}", infer, methods=["POST"]),
        Route("/v1/{name}/feedback", observe.feedback, methods=["POST"]),
        Route("/v1/{name}/{ref}", infer, methods=["POST"]),
        *modelbit.routes(infer),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", observe.prometheus, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        *admin.routes(),
        *experiments.routes(),
        *environments.routes(),
        *tokens.routes(),
        Route("/api/deployments/{name}/metrics", observe.metrics, methods=["GET"]),
        Route("/api/deployments/{name}/logs/export", observe.export_logs, methods=["GET"]),
        *ui.routes(),  # the dashboard: / and /ui/...
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(AuditLog)],
        exception_handlers={
            HTTPException: _http_error,
            ChampionError: _champion_error,
            **{cls: _store_failed for cls in STORE_EXCEPTIONS},
            Exception: _unexpected,
        },
    )
    return InferenceFastPath(app)
