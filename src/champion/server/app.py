"""The ASGI application: inference, the admin API, health."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from champion import __version__
from champion.controller import decisions
from champion.errors import ChampionError, InvalidInput, MethodNotAllowed, NotFound
from champion.events import EventWriter, RequestIds
from champion.registry import Registry, Target
from champion.registry.experiments import Active
from champion.routing import RoutingDecision, RoutingRequest
from champion.runtime.envs import EnvManager
from champion.runtime.pool import PoolSpec, Runtime
from champion.server import admin, environments, experiments, modelbit, observe
from champion.server.http import (
    check_content_type,
    check_ref,
    error_response,
    json_response,
    parse_json,
    read_body,
    require_token,
)
from champion.server.inference import Call, call_options, request_calls, worker_message
from champion.server.shadow import ShadowJob, ShadowRunner
from champion.server.telemetry import Telemetry
from champion.settings import Config
from champion.store import Store

log = logging.getLogger("champion.server")


def load_or_create_token(config: Config) -> tuple[str, bool]:
    """The admin token: the setting, or the one kept in the data directory (made if absent)."""
    if config.token:
        return config.token, False
    path = config.data_path / "token"
    if path.is_file():
        return path.read_text().strip(), False
    token = "chp_" + secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token, True


@dataclass
class State:
    config: Config
    store: Store
    registry: Registry
    runtime: Runtime
    events: EventWriter
    ids: RequestIds
    token: str
    started: float = field(default_factory=time.time)
    specs: dict[tuple[str, int], PoolSpec] = field(default_factory=dict)
    bg_specs: dict[tuple[str, int], PoolSpec] = field(default_factory=dict)
    telemetry: Telemetry = field(default_factory=Telemetry)
    shadow_events: EventWriter | None = None
    shadows: ShadowRunner = field(init=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    envs: EnvManager | None = None  # per-version environments (runtime/envs.py)
    builds: dict[tuple[str, int], environments.Job] = field(default_factory=dict)

    def spec_for(self, target: Target) -> PoolSpec:
        key = (target.deployment, target.version)
        spec = self.specs.get(key)
        own = (environments.worker_for(self.envs, target)
               if target.environment or target.status != "ready" else None)
        if spec is None or spec.manifest is not target.manifest or (
                spec.python != (own.python if own else None)):
            cfg = target.config
            spec = PoolSpec(
                key=key,
                manifest=target.manifest,
                workers=int(cfg.get("workers", self.config.workers)),
                timeout=float(cfg.get("timeout", self.config.timeout)),
                idle_timeout=cfg.get("idle_timeout"),
                batch_max_size=int(cfg.get("batch_max_size", 0)),
                batch_max_wait_ms=float(cfg.get("batch_max_wait_ms", 0.0)),
                python=own.python if own else None,
                environ=own.environ if own else None,
                env_id=own.env_id if own else None,
            )
            self.specs[key] = spec
        return spec

    def background_spec(self, spec: PoolSpec) -> PoolSpec:
        bg = self.bg_specs.get(spec.key)
        if bg is None or bg.manifest is not spec.manifest:
            bg = self.bg_specs[spec.key] = dataclasses.replace(spec, nice=10)
        return bg

    async def execute(self, target: Target, calls: list[Call], ids: list[Any] | None,
                      timeout: float | None = None, *, background: bool = False) -> bytes:
        """Run ``calls`` on ``target``'s workers; the answer's JSON ``data`` as bytes.

        ``background`` (shadow calls): in the version's background pool, at lower priority.
        """
        spec = self.spec_for(target)
        if background:
            spec = self.background_spec(spec)
        if spec.batch_max_size > 1 and not target.manifest.get("dataframe"):
            if any(len(args) != 1 or kwargs for args, kwargs in calls):
                raise InvalidInput("micro-batching is on for this deployment: its function "
                                   "takes one parameter (a list of inputs)")
            outputs = await self.runtime.call_batched(spec, [args[0] for args, _ in calls])
            if ids is None:
                return orjson.dumps(outputs[0], option=orjson.OPT_NON_STR_KEYS)
            return orjson.dumps([[i, y] for i, y in zip(ids, outputs, strict=True)],
                                option=orjson.OPT_NON_STR_KEYS)
        try:
            message = orjson.dumps(worker_message(target.manifest, calls, ids))
        except orjson.JSONEncodeError:  # read at up to 1024 levels, written at up to 254
            raise InvalidInput("the data is nested too deeply (over 250 levels)") from None
        return await self.runtime.call(spec, message, timeout)


def _text(value: str, limit: int | None = None) -> str:
    """A string the store accepts: no NUL (PostgreSQL refuses it, and with it the whole
    batch of events), at most ``limit`` characters (its column's length)."""
    return value[:limit].replace("\x00", "\ufffd")


def _cap(data: bytes, cap: int) -> str:
    if len(data) <= cap:
        return _text(data.decode("utf-8", "replace"))
    return _text(data[:cap].decode("utf-8", "ignore")) + f"…[truncated {len(data) - cap} bytes]"


async def infer(request: Request) -> Response:
    """POST /v1/{name} and /v1/{name}/{ref}: run the function, answer, log the event."""
    st: State = request.app.state.champion
    started = time.perf_counter()
    name = request.path_params["name"]
    explicit = request.path_params.get("ref")
    ref = explicit or "production"
    request_id = st.ids.new()
    target: Target | None = None
    active: Active | None = None
    decision: RoutingDecision | None = None
    body = b""
    parsed: Any = None
    unit = request.headers.get("x-champion-unit")
    batch_size = 1
    try:
        if st.config.require_auth:
            require_token(request, st.token)
        check_content_type(request)
        body = await read_body(request, st.config.max_body_bytes)
        parsed = parse_json(body)
        if "data" not in parsed:
            raise InvalidInput("the request body needs a 'data' field: {\"data\": ...}")
        if unit is None and parsed.get("unit") is not None:
            unit = str(parsed["unit"])
        if explicit is None:  # the endpoint: its experiment decides, if one is running
            active = st.registry.experiment_for(name)
            if active is not None and not active.running:
                active = None
        if active is not None:
            decision = _route(request, st, active, request_id, unit)
            arm = active.arms[decision.variant]
            target = await st.registry.resolve(arm.deployment, str(arm.version))
        else:
            target = await st.registry.resolve(name, check_ref(name, ref))
        calls, ids = request_calls(parsed, target.signature, target.manifest)
        batch_size = len(calls)
        options = call_options(parsed, float(target.config.get("timeout", st.config.timeout)))
        out = await st.execute(target, calls, ids, options.timeout)
    except Exception as caught:
        exc = caught if isinstance(caught, ChampionError) else None
        if exc is None:  # a bug of ours: answered and logged like any failed call
            log.exception("%s %s/%s: unexpected error", request_id, name, ref)
            exc = ChampionError("internal server error; the server log has the details")
        exc.request_id = request_id
        latency = (time.perf_counter() - started) * 1000
        if exc.status_code >= 500:
            log.warning("%s %s/%s -> %d %s", request_id, name, ref, exc.status_code, exc.message)
        if not isinstance(exc, NotFound) or target is not None:
            _record(st, request_id, name, ref, target, exc.status_code, latency, unit,
                    batch_size, body, None, f"{exc.type_name}: {exc.message}",
                    active=active, arm=decision.variant if decision else None)
        return error_response(exc)
    latency = (time.perf_counter() - started) * 1000
    if active is None or decision is None:
        variant = target.label
        payload = b"".join(
            (b'{"data":', out, b',"request_id":"', request_id.encode(), b'","variant":"',
             variant.encode(), b'"}')
        )
        _record(st, request_id, name, ref, target, 200, latency, unit, batch_size, body, out,
                None, parsed)
        return Response(
            payload,
            media_type="application/json",
            headers={"x-champion-request-id": request_id, "x-champion-variant": variant},
        )
    payload = b"".join(
        (b'{"data":', out, b',"request_id":"', request_id.encode(), b'","variant":"',
         decision.variant.encode(), b'","version":"', target.label.encode(),
         b'","experiment":"', active.id.encode(), b'"}')
    )
    _record(st, request_id, name, ref, target, 200, latency, unit, batch_size, body, out, None,
            parsed, active=active, arm=decision.variant)
    if decision.shadows:
        await _mirror(st, active, decision, request_id, parsed)
    return Response(
        payload,
        media_type="application/json",
        headers={"x-champion-request-id": request_id, "x-champion-variant": decision.variant,
                 "x-champion-version": target.label, "x-champion-experiment": active.id},
    )


_rng = random.Random()


def _route(request: Request, st: State, active: Active, request_id: str,
           unit: str | None) -> RoutingDecision:
    """The experiment's decision, or the variant an admin forces with X-Champion-Variant."""
    forced = request.headers.get("x-champion-variant")
    decision = active.policy.decide(RoutingRequest(request_id, unit), _rng)
    if forced is None:
        return decision
    require_token(request, st.token)
    if forced not in active.arms:
        raise InvalidInput(f"X-Champion-Variant: {forced!r} is not a variant of experiment "
                           f"{active.id} ({', '.join(active.arms)})")
    return RoutingDecision(forced, decision.shadows, decision.policy, "forced")


async def _mirror(st: State, active: Active, decision: RoutingDecision, request_id: str,
                  parsed: Any) -> None:
    """Queue the shadow calls; never raises into the live request."""
    for name in decision.shadows:
        try:
            arm = active.arms[name]
            target = await st.registry.resolve(arm.deployment, str(arm.version))
            calls, ids = request_calls(parsed, target.signature, target.manifest)
            st.shadows.submit(ShadowJob(active.id, name, target, request_id, calls, ids))
        except Exception:
            st.shadows.failed[active.id] += 1
            log.warning("could not mirror %s to %s", request_id, name, exc_info=True)


def _redact(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in fields else _redact(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, fields) for v in value]
    return value


def _record(st: State, request_id: str, name: str, ref: str, target: Target | None,
            status: int, latency: float, unit: str | None, batch_size: int, body: bytes,
            out: bytes | None, error: str | None, parsed: Any = None, *,
            active: Active | None = None, arm: str | None = None) -> None:
    """Count the request for /metrics and queue its event for the request log."""
    # A variant that is another deployment's version is not a version of this endpoint.
    version = target.version if target is not None and target.deployment == name else None
    st.telemetry.observe(name, str(version or ""), status, latency / 1000)
    if not st.config.request_log:
        return
    cfg = target.config if target else {}
    cap = int(cfg.get("log_payload_bytes", st.config.log_payload_bytes))
    rate = cfg.get("log_sample_rate")
    keep_payload = cap > 0 and (rate is None or random.random() < rate)
    redact = cfg.get("log_redact")
    if keep_payload and redact:
        fields = frozenset(redact)
        if isinstance(parsed, dict):
            body = orjson.dumps(_redact(parsed, fields))
        if out is not None:
            with contextlib.suppress(orjson.JSONDecodeError):
                out = orjson.dumps(_redact(orjson.loads(out), fields))
    st.events.record({
        "request_id": request_id,
        "ts": time.time(),
        "deployment": _text(name, 128),
        "version": version,
        "target": _text(ref, 64),
        "status": status,
        "latency_ms": latency,
        "batch_size": batch_size,
        "unit": _text(unit, 256) if unit else None,
        "experiment": active.id if active is not None else None,
        "arm": arm,
        "variant": target.label if target else None,
        "input": _cap(body, cap) if body and keep_payload else None,
        "output": _cap(out, cap) if out is not None and keep_payload else None,
        "error": _text(error) if error else None,
    })


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    st: State = request.app.state.champion

    def ping() -> None:
        with st.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(ping), 5)
    except Exception as exc:
        return json_response({"status": "unavailable", "store": str(exc)[:200]}, 503)
    return json_response({"status": "ready", "store": st.store.engine.dialect.name})


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


async def _unexpected(request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
    return error_response(ChampionError(f"internal server error (reference {ref})"))


def create_app(config: Config, *, announce_token: bool = True) -> InferenceFastPath:
    """Build the application; the store opens and the background tasks start on startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        data = config.data_path
        store = await asyncio.to_thread(Store.open, data, config.database_url)
        token, created = load_or_create_token(config)
        if created and announce_token:
            print(
                f"champion: admin token (shown once; kept in {data / 'token'}):\n  {token}",
                flush=True,
            )
        st = State(
            config=config,
            store=store,
            registry=Registry(store),
            runtime=Runtime(store.artifacts.root, idle_timeout=config.idle_timeout),
            events=EventWriter(store, config.log_flush_ms),
            ids=RequestIds(store.get_meta("secret") or ""),
            token=token,
            envs=EnvManager(data, budget_bytes=int(config.env_budget_gb * 1024**3),
                            timeout=config.build_timeout),
        )
        if st.envs is not None:
            st.envs.in_use = st.runtime.env_ids
        st.shadow_events = EventWriter(store, config.log_flush_ms,
                                       insert=store.insert_shadow_events)
        st.shadows = ShadowRunner(st.execute, st.shadow_events,
                                  payload_cap=config.log_payload_bytes)
        await st.registry.refresh(force=True)
        st.runtime.start()
        st.events.start()
        st.shadow_events.start()
        st.tasks.append(asyncio.create_task(_poll_registry(st)))
        st.tasks.append(asyncio.create_task(environments.resume(st)))
        st.tasks.append(asyncio.create_task(
            decisions.run(st.registry, st.shadows.status, config.controller_interval)))
        if config.log_retention_days > 0:
            st.tasks.append(asyncio.create_task(_retention(st)))
        st.telemetry.gauges = lambda: _gauges(st)
        app.state.champion = st
        try:
            yield
        finally:
            for task in st.tasks:
                task.cancel()
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
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", observe.prometheus, methods=["GET"]),
        *admin.routes(),
        *experiments.routes(),
        *environments.routes(),
        Route("/api/deployments/{name}/metrics", observe.metrics, methods=["GET"]),
        Route("/api/deployments/{name}/logs/export", observe.export_logs, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            ChampionError: _champion_error,
            Exception: _unexpected,
        },
    )
    return InferenceFastPath(app)


class InferenceFastPath:
    """POST /v1/NAME and /v1/NAME/REF straight to ``infer``; everything else to Starlette.

    ``infer`` answers every outcome itself (errors included), so Starlette's middleware,
    exception handling and route matching add only cost on the hot path (~15 % of the
    server's time per request, measured). The routes stay registered in Starlette too.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/v1/"):
                parts = path[4:].split("/")
                if (0 < len(parts) <= 2 and all(parts)
                        and not (len(parts) == 2 and parts[1] == "feedback")):
                    scope["app"] = self.app
                    scope["path_params"] = (
                        {"name": parts[0]} if len(parts) == 1
                        else {"name": parts[0], "ref": parts[1]})
                    response = await infer(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _poll_registry(st: State) -> None:
    """See registry changes made by other server processes sharing the store."""
    while True:
        await asyncio.sleep(st.config.poll_interval)
        try:
            if await st.registry.refresh():
                live = await st.registry.names()
                for key in [k for k in st.runtime.versions() if k[0] not in live]:
                    await st.runtime.stop(key)
        except Exception:
            log.exception("registry refresh failed")




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
    }


async def _retention(st: State) -> None:
    """Delete events older than the retention period, in bounded batches."""
    while True:
        try:
            cutoff = time.time() - st.config.log_retention_days * 86400
            while True:
                deleted = await asyncio.to_thread(st.store.delete_events_before, cutoff)
                if deleted < 1000:
                    break
                await asyncio.sleep(0.05)  # let the request path's writes in between
        except Exception:
            log.exception("log retention failed")
        await asyncio.sleep(st.config.retention_interval)
