"""Feedback in, metrics and the request log out: /v1/{name}/feedback, /api/.../metrics,
/api/.../logs/export and /metrics."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from champion.errors import BadRequest, ChampionError, NotFound, PayloadTooLarge
from champion.events.feedback import MAX_ITEMS, parse_batch
from champion.server.http import (
    MAX_VERSION,
    json_response,
    optional_caller,
    read_json,
    require_token,
)
from champion.timeutil import parse_duration, parse_time

if TYPE_CHECKING:
    from champion.server.state import State

MAX_FEEDBACK_BYTES = 32 * 1024 * 1024
_OPTS = orjson.OPT_NON_STR_KEYS  # SQLAlchemy's row keys are str subclasses
EXPORT_COLUMNS = ("request_id", "ts", "deployment", "version", "target", "status",
                  "latency_ms", "batch_size", "unit", "experiment", "variant", "input",
                  "output", "error", "feedback")


def _st(request: Request) -> State:
    st: State = request.app.state.champion
    return st


async def _require_deployment(st: State, name: str) -> None:
    if not await st.registry.exists(name):
        raise NotFound(f"no deployment named {name!r}", deployment=name)


# ------------------------------------------------------------------ feedback


async def feedback(request: Request) -> Response:
    """POST /v1/{name}/feedback: one item or a list; committed before the answer."""
    st = _st(request)
    if st.config.require_auth:
        require_token(request, st.token, "feedback")
    else:
        optional_caller(request, st.token)
    name = request.path_params["name"]
    body = await read_json(request, MAX_FEEDBACK_BYTES, require_object=False)
    if not await st.registry.exists(name):
        st.telemetry.unknown += 1
        raise NotFound(f"no deployment named {name!r}", deployment=name)
    n_items = len(body) if isinstance(body, list) else len(body.get("feedback") or []) if (
        isinstance(body, dict) and isinstance(body.get("feedback"), list)) else 1
    if n_items > MAX_ITEMS:
        raise PayloadTooLarge(f"a feedback batch holds at most {MAX_ITEMS} items, "
                              f"this one has {n_items}")
    try:
        rows, errors, batch = parse_batch(body, name, st.ids)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    atomic = request.query_params.get("atomic", "").lower() in ("1", "true", "yes")
    if errors and (not batch or atomic or not rows):
        if not batch:
            raise BadRequest(errors[0].message)
        raise BadRequest(
            f"{len(errors)} of {n_items} feedback items are invalid; nothing was stored",
            errors=[e.to_dict() for e in errors[:100]],
        )
    await _name_arms(st, name, [r for _, r in rows])
    fresh = await asyncio.to_thread(st.store.insert_feedback, [r for _, r in rows])
    accepted = sum(fresh)
    duplicates = [i for (i, _), new in zip(rows, fresh, strict=True) if not new]
    for (_, row), new in zip(rows, fresh, strict=True):
        if new:
            st.telemetry.count_feedback(name, row["metric"])
    result: dict[str, Any] = {"accepted": accepted, "duplicates": len(duplicates)}
    if batch:
        result["duplicate_items"] = duplicates[:1000]
        result["errors"] = [e.to_dict() for e in errors[:1000]]
        result["rejected"] = len(errors)
    return json_response(result)


async def _name_arms(st: State, name: str, rows: list[dict[str, Any]]) -> None:
    """Fill in the arm that served each attributed row: its request id carries the
    experiment and the arm's index among the experiment's variants (which only grow)."""
    wanted = {r["experiment"] for r in rows
              if r.get("experiment") and r.get("arm_index") is not None}
    if not wanted:
        return
    variants: dict[str, tuple[str, ...]] = {}
    active = st.registry.experiment_for(name)
    for exp_id in wanted:
        if active is not None and active.id == exp_id:
            variants[exp_id] = active.exp.variants
            continue
        row = await asyncio.to_thread(st.store.get_experiment, exp_id)
        if row is not None:
            variants[exp_id] = tuple(row["config"]["variants"])
    for r in rows:
        names = variants.get(r.get("experiment") or "")
        index = r.get("arm_index")
        if names is not None and index is not None and 0 <= index < len(names):
            r["arm"] = names[index]


# ------------------------------------------------------------------ metrics


def _time_param(request: Request, key: str, default: float) -> float:
    raw = request.query_params.get(key)
    if not raw:
        return default
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise BadRequest(f"query parameter {key!r}: {exc}") from None


async def metrics(request: Request) -> Response:
    """GET /api/deployments/{name}/metrics?since=&until=&bucket="""
    st = _st(request)
    require_token(request, st.token)
    name = request.path_params["name"]
    await _require_deployment(st, name)
    now = time.time()
    until = _time_param(request, "until", now)
    since = _time_param(request, "since", until - 3600)
    if since >= until:
        raise BadRequest("'since' must be before 'until'")
    raw_bucket = request.query_params.get("bucket")
    try:
        bucket = parse_duration(raw_bucket) if raw_bucket else max(60.0, (until - since) / 60)
    except ValueError as exc:
        raise BadRequest(f"query parameter 'bucket': {exc}") from None
    if bucket < 60:
        raise BadRequest("'bucket' is at least 60 seconds (the rollups are per minute)")
    if (until - since) / bucket > 10_000:
        raise BadRequest("too many buckets: widen 'bucket' or narrow the time range")
    data = await asyncio.to_thread(st.store.metrics, name, since, until, int(bucket))
    return json_response(data)


async def prometheus(request: Request) -> Response:
    st = _st(request)
    return Response(st.telemetry.render(),
                    media_type="text/plain; version=0.0.4; charset=utf-8")


# ------------------------------------------------------------------ the log as data


def log_filters(request: Request) -> dict[str, Any]:
    """Filters shared by the log listing and the export."""
    q = request.query_params
    filters: dict[str, Any] = {}
    if q.get("since"):
        filters["since"] = _time_param(request, "since", 0)
    if q.get("until"):
        filters["until"] = _time_param(request, "until", 0)
    for key, low, high in (("version", 1, MAX_VERSION), ("status", 1, 599)):
        if q.get(key):
            raw = q[key]
            if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high or (
                    key == "status" and 5 < int(raw) < 100):
                raise BadRequest(f"query parameter {key!r} must be an integer from {low} to "
                                 f"{high}" + (" (1 to 5: a class, e.g. 5 for 5xx)"
                                              if key == "status" else ""))
            filters[key] = int(raw)
    for key in ("experiment", "unit"):
        if q.get(key):
            if "\x00" in q[key] or len(q[key]) > 256:
                raise BadRequest(f"query parameter {key!r} must be at most 256 characters, "
                                 "without NUL")
            filters[key] = q[key]
    return filters


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in EXPORT_COLUMNS}
    out["feedback"] = orjson.dumps(row.get("feedback") or {}).decode()
    return out


async def export_logs(request: Request) -> Response:
    """GET /api/deployments/{name}/logs/export?format=jsonl|csv|parquet&since=…"""
    st = _st(request)
    require_token(request, st.token)
    name = request.path_params["name"]
    await _require_deployment(st, name)
    fmt = request.query_params.get("format", "jsonl")
    filters = log_filters(request)
    if fmt not in ("jsonl", "csv", "parquet"):
        raise BadRequest("'format' is one of jsonl, csv, parquet")
    chunks = st.store.iter_requests(name, **filters)

    async def next_chunk() -> list[dict[str, Any]] | None:
        return await asyncio.to_thread(next, chunks, None)

    if fmt == "parquet":
        path = await asyncio.to_thread(_write_parquet, st, name, filters)
        return FileResponse(path, media_type="application/vnd.apache.parquet",
                            filename=f"{name}-requests.parquet",
                            background=BackgroundTask(path.unlink, missing_ok=True))

    async def stream() -> AsyncIterator[bytes]:
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            yield buf.getvalue().encode()
        while (rows := await next_chunk()) is not None:
            if fmt == "jsonl":
                yield b"".join(orjson.dumps(r, option=_OPTS) + b"\n" for r in rows)
            else:
                buf = io.StringIO()
                writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS)
                writer.writerows(_flat(r) for r in rows)
                yield buf.getvalue().encode()

    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(stream(), media_type=media, headers={
        "content-disposition": f'attachment; filename="{name}-requests.{fmt}"'})


def _write_parquet(st: State, name: str, filters: dict[str, Any]) -> Path:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ChampionError("Parquet export needs pyarrow on the server: "
                            "pip install pyarrow") from None
    schema = pa.schema([
        ("request_id", pa.string()), ("ts", pa.float64()), ("deployment", pa.string()),
        ("version", pa.int64()), ("target", pa.string()), ("status", pa.int32()),
        ("latency_ms", pa.float64()), ("batch_size", pa.int32()), ("unit", pa.string()),
        ("experiment", pa.string()), ("variant", pa.string()), ("input", pa.string()),
        ("output", pa.string()), ("error", pa.string()), ("feedback", pa.string()),
    ])
    fd, tmp = tempfile.mkstemp(suffix=".parquet", prefix="champion-export-")
    path = Path(tmp)
    with open(fd, "wb") as sink, pq.ParquetWriter(sink, schema) as writer:
        wrote = False
        for rows in st.store.iter_requests(name, **filters):
            writer.write_table(pa.Table.from_pylist([_flat(r) for r in rows], schema=schema))
            wrote = True
        if not wrote:
            writer.write_table(schema.empty_table())
    return path
