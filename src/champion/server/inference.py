"""The inference path: ``POST /v1/{name}`` and ``POST /v1/{name}/{ref}``, top to bottom.

1. Read and check the body (``{"data": ...}``), the unit (header or field).
2. On the endpoint, the running experiment's policy decides: who answers, who gets a copy,
   whose answers are merged. A version or alias in the path is called directly.
3. The version's workers run the calls (several variants concurrently for a merged answer).
4. The answer carries the request id, the variant (and the experiment); the event is queued
   for the request log; shadow copies leave after the answer is built.

Every outcome, errors included, is answered here in the one error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from champion.errors import BadRequest, ChampionError, InvalidInput
from champion.registry import Target
from champion.registry.experiments import Active
from champion.routing import RoutingDecision, RoutingRequest
from champion.server.http import (
    check_content_type,
    check_ref,
    error_response,
    optional_caller,
    parse_json,
    read_body,
    require_token,
)
from champion.server.shadow import ShadowJob
from champion.server.shapes import call_options, request_calls
from champion.server.state import State
from champion.store.failures import store_failure
from champion.strategies import Answer, Merged

log = logging.getLogger("champion.server")

_rng = random.Random()
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


async def infer(request: Request) -> Response:
    """POST /v1/{name} and /v1/{name}/{ref}: run the function, answer, log the event."""
    st: State = request.app.state.champion
    started = time.perf_counter()
    name = request.path_params["name"]
    explicit = request.path_params.get("ref")
    ref = explicit or "production"
    key = st.ids.key()  # routing hashes the key; the id issued at the end carries the arm
    target: Target | None = None
    active: Active | None = None
    decision: RoutingDecision | None = None
    merged: Merged | None = None
    body = b""
    parsed: Any = None
    unit = request.headers.get("x-champion-unit")
    batch_size = 1
    try:
        if st.config.require_auth:
            require_token(request, st.token, "infer")
        else:
            optional_caller(request, st.token)
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
            decision = _route(request, st, active, key, unit, parsed)
            if decision.merge:
                target, out, merged, batch_size = await _merged(st, active, decision, key,
                                                                parsed)
            else:
                target = await _arm_target(st, active, decision.variant)
        else:
            target = await st.registry.resolve(name, check_ref(name, ref))
        if merged is None:
            calls, ids = request_calls(parsed, target.signature, target.manifest)
            batch_size = len(calls)
            timeout = float(target.config.get("timeout", st.config.timeout))
            limit = call_options(parsed, timeout).timeout or timeout
            # end to end: what reading and routing the request took counts too
            remaining = max(limit - (time.perf_counter() - started), 0.001)
            out = await st.executor.run(target, calls, ids, remaining)
    except Exception as caught:
        exc = caught if isinstance(caught, ChampionError) else None
        request_id = _issue(st, key, name, target, active,
                            decision.variant if decision else None)
        if exc is None:
            exc = store_failure(caught)  # the store down (503) or full (507)
            if exc is not None:
                log.warning("%s %s/%s: %s: %s", request_id, name, ref, exc.type_name, caught)
        if exc is None:  # a bug of ours: answered and logged like any failed call
            log.exception("%s %s/%s: unexpected error", request_id, name, ref)
            exc = ChampionError("internal server error; the server log has the details")
        exc.request_id = request_id
        latency = (time.perf_counter() - started) * 1000
        if exc.status_code >= 500:
            log.warning("%s %s/%s -> %d %s", request_id, name, ref, exc.status_code, exc.message)
        if target is not None or st.registry.known(name):
            _record(st, request_id, name, ref, target, exc.status_code, latency, unit,
                    batch_size, body, None, f"{exc.type_name}: {exc.message}",
                    active=active, arm=decision.variant if decision else None)
        else:  # a made-up name: no log row, no metric series of its own (they are unbounded)
            _unknown(st, name)
        return error_response(exc)
    latency = (time.perf_counter() - started) * 1000
    if active is None or decision is None:
        request_id = _issue(st, key, name, target, None, None)
        variant = target.label
        payload = b"".join(
            (b'{"data":', out, b',"request_id":"', request_id.encode(), b'","variant":"',
             variant.encode(), b'"}')
        )
        _record(st, request_id, name, ref, target, 200, latency, unit, batch_size, body, out,
                None, parsed)
        return _Answer(payload, [(b"x-champion-request-id", request_id.encode()),
                                 (b"x-champion-variant", variant.encode())])
    arm = merged.arm if merged is not None else decision.variant
    request_id = _issue(st, key, name, target, active, arm)
    extra = b""
    if merged is not None and merged.extra:
        extra = b"," + orjson.dumps(dict(merged.extra), option=_JSON_OPTS)[1:-1]
    payload = b"".join(
        (b'{"data":', out, b',"request_id":"', request_id.encode(), b'","variant":"',
         arm.encode(), b'","version":"', target.label.encode(), b'","experiment":"',
         active.id.encode(), b'"', extra, b"}")
    )
    _record(st, request_id, name, ref, target, 200, latency, unit, batch_size, body, out, None,
            parsed, active=active, arm=arm,
            detail=dict(merged.detail) if merged is not None and merged.detail else None)
    if decision.shadows:  # queued once this answer is on its way (the loop's next pass)
        asyncio.get_running_loop().call_soon(_mirror_soon, st, active, decision, request_id,
                                             parsed)
    return _Answer(payload, [(b"x-champion-request-id", request_id.encode()),
                             (b"x-champion-variant", arm.encode()),
                             (b"x-champion-version", target.label.encode()),
                             (b"x-champion-experiment", active.id.encode())])


class _Answer(Response):
    """A 200 JSON answer with its headers given as bytes: what ``Response`` makes of a
    header dict (lower-casing, encoding, checking each), done once by the caller. The
    names are lower-case ASCII; the values are ids and labels champion made (ASCII)."""

    media_type = "application/json"

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"), *headers]


_MAX_NAMED_UNKNOWN = 100
_named_unknown: set[str] = set()


def _unknown(st: State, name: str) -> None:
    """Count a request to a deployment that does not exist; say its name in the server log
    once (and only the first hundred names)."""
    st.telemetry.unknown += 1
    if name not in _named_unknown and len(_named_unknown) < _MAX_NAMED_UNKNOWN:
        _named_unknown.add(name)
        log.info("request for an unknown deployment %r (logged once per name)", name[:128])


def _context(parsed: dict[str, Any]) -> dict[str, Any]:
    """The body's other top-level scalars (e.g. ``page``): what a policy may look at."""
    if len(parsed) == 1:  # {"data": ...} alone, the common body
        return {}
    return {k: v for k, v in parsed.items() if k not in ("data", "unit", "batch")
            and isinstance(v, (str, int, float, bool)) and len(str(v)) <= 256}


def _issue(st: State, key: str, name: str, target: Target | None, active: Active | None,
           arm: str | None) -> str:
    """The signed request id: the key, and what served it (the endpoint's version, the
    experiment and the arm's index), so feedback is credited from the id alone."""
    version = target.version if target is not None and target.deployment == name else None
    if active is None:
        return st.ids.issue(key, version=version)
    index = active.exp.variants.index(arm) if arm in active.arms else None
    return st.ids.issue(key, version=version, experiment=active.id, arm=index)


def _route(request: Request, st: State, active: Active, request_id: str,
           unit: str | None, parsed: dict[str, Any]) -> RoutingDecision:
    """The experiment's decision, or the variant an admin forces with X-Champion-Variant."""
    forced = request.headers.get("x-champion-variant")
    decision = active.policy.decide(RoutingRequest(request_id, unit, _context(parsed)), _rng)
    if forced is None:
        return decision
    require_token(request, st.token)
    if forced not in active.arms:
        raise InvalidInput(f"X-Champion-Variant: {forced!r} is not a variant of experiment "
                           f"{active.id} ({', '.join(active.arms)})")
    return RoutingDecision(forced, decision.shadows, decision.policy, "forced")


async def _arm_target(st: State, active: Active, variant: str) -> Target:
    arm = active.arms[variant]
    # an arm names a version by number: the registry's cache has it once it was resolved
    # (the cache is dropped whenever the registry reloads); the full path otherwise
    target = st.registry.cached(arm.deployment, arm.version)
    if target is not None:
        return target
    return await st.registry.resolve(arm.deployment, str(arm.version))


async def _merged(st: State, active: Active, decision: RoutingDecision, request_id: str,
                  parsed: Any) -> tuple[Target, bytes, Merged, int]:
    """Call every variant of ``decision.merge`` concurrently and let the strategy merge."""
    names = list(decision.merge)
    targets = {n: await _arm_target(st, active, n) for n in names}
    prepared = {n: request_calls(parsed, t.signature, t.manifest) for n, t in targets.items()}
    # Modelbit's request options hold here as on one variant's path (a 400 for what champion
    # does not do; timeout_seconds caps each variant's call)
    timeouts = {n: call_options(parsed, float(t.config.get("timeout", st.config.timeout))
                                ).timeout for n, t in targets.items()}
    if any(ids is not None for _, ids in prepared.values()):
        raise InvalidInput("this endpoint's experiment merges several variants' answers into "
                           "one answer per input: send one input per request, not a batch")

    async def one(n: str) -> Answer:
        calls, ids = prepared[n]
        t0 = time.perf_counter()
        try:
            out = await st.executor.run(targets[n], calls, ids, timeouts[n])
        except ChampionError as exc:
            return Answer(False, error=f"{exc.type_name}: {exc.message}",
                          latency_ms=(time.perf_counter() - t0) * 1000)
        return Answer(True, orjson.loads(out), latency_ms=(time.perf_counter() - t0) * 1000)

    results = await asyncio.gather(*(one(n) for n in names))
    answers = dict(zip(names, results, strict=True))
    if not any(a.ok for a in answers.values()):
        first = answers[decision.variant if decision.variant in answers else names[0]]
        raise ChampionError(f"every variant failed; {decision.variant}: {first.error}")
    try:
        merged = active.strategy.merge(active.settings, active.exp, decision, request_id,
                                       answers)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    target = targets.get(merged.arm) or targets[decision.variant]
    try:
        out = orjson.dumps(merged.data, option=_JSON_OPTS)
    except orjson.JSONEncodeError:
        raise ChampionError("the merged answer cannot be written as JSON") from None
    return target, out, merged, len(prepared[names[0]][0])


_background: set[asyncio.Task[None]] = set()


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _mirror_soon(st: State, active: Active, decision: RoutingDecision, request_id: str,
                 parsed: Any) -> None:
    """Queue the shadow calls of a request whose answer has gone; never raises. A shadow
    whose version the registry's cache holds is queued here and now (a task per request
    cost ~20 us of the live loop at c=1, py-spy); one that must be resolved, in a task."""
    for name in decision.shadows:
        arm = active.arms.get(name)
        target = st.registry.cached(arm.deployment, arm.version) if arm is not None else None
        if target is None:
            _spawn(_mirror(st, active, name, request_id, parsed))
        else:
            _submit(st, active, name, target, request_id, parsed)


async def _mirror(st: State, active: Active, name: str, request_id: str, parsed: Any) -> None:
    try:
        target = await _arm_target(st, active, name)
    except Exception:
        st.shadows.failed[active.id] += 1
        log.warning("could not mirror %s to %s", request_id, name, exc_info=True)
        return
    _submit(st, active, name, target, request_id, parsed)


def _submit(st: State, active: Active, name: str, target: Target, request_id: str,
            parsed: Any) -> None:
    try:
        calls, ids = request_calls(parsed, target.signature, target.manifest)
        st.shadows.submit(ShadowJob(active.id, name, target, request_id, calls, ids))
    except Exception:
        st.shadows.failed[active.id] += 1
        log.warning("could not mirror %s to %s", request_id, name, exc_info=True)


def _text(value: str, limit: int | None = None) -> str:
    """A string the store accepts: no NUL (PostgreSQL refuses it, and with it the whole
    batch of events), at most ``limit`` characters (its column's length)."""
    return value[:limit].replace("\x00", "\ufffd")


def _cap(data: bytes, cap: int) -> str:
    if len(data) <= cap:
        return _text(data.decode("utf-8", "replace"))
    return _text(data[:cap].decode("utf-8", "ignore")) + f"…[truncated {len(data) - cap} bytes]"


def _redact(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in fields else _redact(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, fields) for v in value]
    return value


def _record(st: State, request_id: str, name: str, ref: str, target: Target | None,
            status: int, latency: float, unit: str | None, batch_size: int, body: bytes,
            out: bytes | None, error: str | None, parsed: Any = None, *,
            active: Active | None = None, arm: str | None = None,
            detail: Mapping[str, Any] | None = None) -> None:
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
        "detail": (orjson.dumps(dict(detail), option=_JSON_OPTS).decode()
                   if detail is not None else None),
    })


class InferenceFastPath:
    """POST /v1/NAME and /v1/NAME/REF straight to ``infer``; everything else to the app.

    ``infer`` answers every outcome itself (errors included), so Starlette's middleware,
    exception handling and route matching add only cost on the hot path (~15 % of the
    server's time per request, measured). The routes stay registered in Starlette too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope.get(
                "query_string", b"")):
            # No route takes a NUL, and PostgreSQL refuses it in text: 400 here, for all.
            await error_response(BadRequest("the URL holds a NUL character (%00)"))(
                scope, receive, send)
            return
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
