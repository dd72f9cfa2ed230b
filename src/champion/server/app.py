"""The ASGI application: inference, the admin API, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

from champion import __version__
from champion.errors import ChampionError, InvalidInput, NotFound
from champion.events import EventWriter, RequestIds
from champion.registry import Registry, Target
from champion.runtime.pool import PoolSpec, Runtime
from champion.server import admin
from champion.server.http import (
    error_response,
    json_response,
    parse_json,
    read_body,
    check_content_type,
    require_token,
)
from champion.server.inference import calls_for
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
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def spec_for(self, target: Target) -> PoolSpec:
        key = (target.deployment, target.version)
        spec = self.specs.get(key)
        if spec is None or spec.manifest is not target.manifest:
            cfg = target.config
            spec = PoolSpec(
                key=key,
                manifest=target.manifest,
                workers=int(cfg.get("workers", self.config.workers)),
                timeout=float(cfg.get("timeout", self.config.timeout)),
                idle_timeout=cfg.get("idle_timeout"),
            )
            self.specs[key] = spec
        return spec


def _cap(data: bytes, cap: int) -> str:
    if len(data) <= cap:
        return data.decode("utf-8", "replace")
    return data[:cap].decode("utf-8", "ignore") + f"…[truncated {len(data) - cap} bytes]"


async def infer(request: Request) -> Response:
    """POST /v1/{name} and /v1/{name}/{ref}: run the function, answer, log the event."""
    st: State = request.app.state.champion
    started = time.perf_counter()
    name = request.path_params["name"]
    ref = request.path_params.get("ref", "production")
    request_id = st.ids.new()
    target: Target | None = None
    body = b""
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
        target = await st.registry.resolve(name, ref)
        calls, ids = calls_for(parsed, target.signature)
        batch_size = len(calls)
        out = await st.runtime.call(
            st.spec_for(target), orjson.dumps({"calls": calls, "ids": ids})
        )
    except ChampionError as exc:
        exc.request_id = request_id
        latency = (time.perf_counter() - started) * 1000
        if exc.status_code >= 500:
            log.warning("%s %s/%s -> %d %s", request_id, name, ref, exc.status_code, exc.message)
        if not isinstance(exc, NotFound) or target is not None:
            _record(st, request_id, name, ref, target, exc.status_code, latency, unit,
                    batch_size, body, None, f"{exc.type_name}: {exc.message}")
        return error_response(exc)
    variant = target.label
    payload = b"".join(
        (b'{"data":', out, b',"request_id":"', request_id.encode(), b'","variant":"',
         variant.encode(), b'"}')
    )
    latency = (time.perf_counter() - started) * 1000
    _record(st, request_id, name, ref, target, 200, latency, unit, batch_size, body, out, None)
    return Response(
        payload,
        media_type="application/json",
        headers={"x-champion-request-id": request_id, "x-champion-variant": variant},
    )


def _record(st: State, request_id: str, name: str, ref: str, target: Target | None,
            status: int, latency: float, unit: str | None, batch_size: int, body: bytes,
            out: bytes | None, error: str | None) -> None:
    cap = st.config.log_payload_bytes
    st.events.record({
        "request_id": request_id,
        "ts": time.time(),
        "deployment": name,
        "version": target.version if target else None,
        "target": ref[:64],
        "status": status,
        "latency_ms": latency,
        "batch_size": batch_size,
        "unit": unit[:256] if unit else None,
        "experiment": None,
        "variant": target.label if target else None,
        "input": _cap(body, cap) if body else None,
        "output": _cap(out, cap) if out is not None else None,
        "error": error,
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
    assert isinstance(exc, HTTPException)
    kind = {404: NotFound, 405: InvalidInput}.get(exc.status_code, ChampionError)
    err = kind(str(exc.detail))
    err.status_code = exc.status_code
    if exc.status_code == 405:
        err.type_name = "method_not_allowed"
    return error_response(err)


async def _champion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChampionError)
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
    return error_response(ChampionError(f"internal server error (reference {ref})"))


def create_app(config: Config, *, announce_token: bool = True) -> Starlette:
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
        )
        await st.registry.refresh(force=True)
        st.runtime.start()
        st.events.start()
        st.tasks.append(asyncio.create_task(_poll_registry(st)))
        app.state.champion = st
        try:
            yield
        finally:
            for task in st.tasks:
                task.cancel()
            await st.events.close()
            await st.runtime.close()
            await asyncio.to_thread(store.close)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *admin.routes(),
        Route("/v1/{name}", infer, methods=["POST"]),
        Route("/v1/{name}/{ref}", infer, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            ChampionError: _champion_error,
            Exception: _unexpected,
        },
    )


async def _poll_registry(st: State) -> None:
    """See registry changes made by other server processes sharing the store."""
    while True:
        await asyncio.sleep(st.config.poll_interval)
        try:
            if await st.registry.refresh():
                live = set((await st.registry._alias_map()).keys())
                for key in [k for k in st.runtime.pools if k[0] not in live]:
                    await st.runtime.stop(key)
        except Exception:
            log.exception("registry refresh failed")


