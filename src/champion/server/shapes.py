"""From a request body to worker calls: the shapes of ``{"data": ...}``.

* single: ``{"data": x}``; for a function of several parameters ``{"data": [a, b]}`` or
  ``{"data": {"a": ..., "b": ...}}``.
* batch: ``{"data": [[id, x], [id, x], ...]}``, or Modelbit's multi-argument rows
  ``{"data": [[id, a, b], ...]}`` for a function of several parameters. The id is an int or a
  string. ``"batch": true|false`` in the body says it outright when a single input would
  look like a batch.

How a list of lists is read (the function's signature decides, never a guess):

* rows of two, ``[id, x]``: a batch; ``x`` binds like a single request's data;
* longer rows, ``[id, a, b, ...]``, for a function that can take that many positional
  arguments: a batch, each row's values after the id being the arguments, as Modelbit
  binds them;
* longer rows for a function of one parameter: not rows at all, the list is one input (the
  function cannot take ``a, b``);
* rows that look like a batch but fit no reading (a row with more values than the function
  takes, a row that is not a list): ``400 invalid_input`` naming the row.

Request options beside ``data`` (``timeout_seconds``, ``response_format``, Modelbit's
``response_webhook``) are read by ``call_options``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from champion.errors import InvalidInput

Call = tuple[list[Any], dict[str, Any]]

_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


def _has_id(row: Any) -> bool:
    return (
        isinstance(row, list)
        and len(row) >= 2
        and isinstance(row[0], (int, str))
        and not isinstance(row[0], bool)
    )


def _is_row(row: Any) -> bool:
    return _has_id(row) and len(row) == 2


def _max_positional(signature: Sequence[dict[str, Any]]) -> float:
    """How many positional arguments the function takes (infinite with ``*args``)."""
    if any(p["kind"] == "VAR_POSITIONAL" for p in signature):
        return math.inf
    return sum(1 for p in signature if p["kind"] in _POSITIONAL)


def is_batch(body: dict[str, Any], signature: Sequence[dict[str, Any]] | None = None) -> bool:
    """Whether ``body["data"]`` is a batch (see the module docstring).

    Without a signature only two-element rows count: longer rows are a batch only for a
    function known to take several positional arguments.
    """
    flag = body.get("batch")
    if flag is not None:
        if not isinstance(flag, bool):
            raise InvalidInput("'batch' must be true or false")
        return flag
    data = body["data"]
    if not (isinstance(data, list) and len(data) > 0 and _has_id(data[0])):
        return False
    if len(data[0]) == 2:
        return True
    return signature is not None and _max_positional(signature) >= 2


def bind_positional(values: list[Any], signature: Sequence[dict[str, Any]]) -> Call:
    """Arguments ``f(*values)``, as Modelbit binds a row's values; InvalidInput if they
    do not fit the signature."""
    positional = [p for p in signature if p["kind"] in _POSITIONAL]
    required_pos = [p for p in positional if not p["default"]]
    kw_required = [p["name"] for p in signature
                   if p["kind"] == "KEYWORD_ONLY" and not p["default"]]
    if kw_required:
        raise InvalidInput(
            f"missing parameter {kw_required[0]!r}: it is keyword-only; send the row's value "
            "as an object, [id, {...}]",
            parameter=kw_required[0],
        )
    if len(values) < len(required_pos):
        missing = required_pos[len(values)]["name"]
        raise InvalidInput(
            f"missing parameter {missing!r}: the function takes {len(required_pos)} "
            f"positional arguments, {len(values)} given",
            parameter=missing,
        )
    if len(values) > _max_positional(signature):
        raise InvalidInput(
            f"too many arguments: the function takes at most {len(positional)} "
            f"({', '.join(p['name'] for p in positional)}), {len(values)} given"
        )
    return list(values), {}


def bind(data: Any, signature: Sequence[dict[str, Any]]) -> Call:
    """Arguments for one call of a function with this signature, or InvalidInput."""
    params = [p for p in signature if p["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")]
    var_pos = any(p["kind"] == "VAR_POSITIONAL" for p in signature)
    var_kw = any(p["kind"] == "VAR_KEYWORD" for p in signature)
    required = [p for p in params if not p["default"]]
    if not params and not var_pos and not var_kw:
        if data is None:
            return [], {}
        raise InvalidInput("the function takes no parameters; send {\"data\": null}")
    if len(params) == 1 and not var_pos and not var_kw:
        if params[0]["kind"] == "KEYWORD_ONLY":
            return [], {params[0]["name"]: data}
        return [data], {}
    if len(required) <= 1 and not isinstance(data, (list, dict)):
        return [data], {}
    if isinstance(data, dict):
        names = {p["name"] for p in params}
        unknown = [k for k in data if k not in names]
        if unknown and not var_kw:
            raise InvalidInput(
                f"unknown parameter {unknown[0]!r}; the function takes "
                f"{', '.join(p['name'] for p in params)}",
                parameter=unknown[0],
            )
        missing = [p["name"] for p in required if p["name"] not in data]
        if missing:
            raise InvalidInput(f"missing parameter {missing[0]!r}", parameter=missing[0])
        positional_only = [p["name"] for p in params if p["kind"] == "POSITIONAL_ONLY"]
        if positional_only:
            # Passed in order up to the first one not given; one after that has no place.
            given = 0
            while given < len(positional_only) and positional_only[given] in data:
                given += 1
            stranded = [n for n in positional_only[given:] if n in data]
            if stranded:
                raise InvalidInput(
                    f"parameter {stranded[0]!r} is positional-only and cannot be given "
                    f"without {positional_only[given]!r}",
                    parameter=stranded[0],
                )
            args = [data[n] for n in positional_only[:given]]
            kwargs = {k: v for k, v in data.items() if k not in positional_only}
            return args, kwargs
        return [], dict(data)
    if isinstance(data, list):
        positional = [p for p in params if p["kind"] in _POSITIONAL]
        required_pos = [p for p in positional if not p["default"]]
        if len(data) < len(required_pos):
            missing = required_pos[len(data)]["name"]
            raise InvalidInput(
                f"missing parameter {missing!r}: the function takes "
                f"{len(required_pos)} positional arguments, {len(data)} given",
                parameter=missing,
            )
        kw_required = [p["name"] for p in required if p["kind"] == "KEYWORD_ONLY"]
        if kw_required:
            raise InvalidInput(
                f"missing parameter {kw_required[0]!r}: pass the arguments as an object",
                parameter=kw_required[0],
            )
        if len(data) > len(positional) and not var_pos:
            raise InvalidInput(
                f"too many arguments: the function takes at most {len(positional)} "
                f"({', '.join(p['name'] for p in positional)}), {len(data)} given"
            )
        return list(data), {}
    first = required[0]["name"] if required else params[0]["name"]
    raise InvalidInput(
        f"the function takes several parameters ({', '.join(p['name'] for p in params)}); "
        "send them as a list or an object",
        parameter=first,
    )


def _bind_row(i: int, row: Any, signature: Sequence[dict[str, Any]]) -> Call:
    if not _has_id(row):
        raise InvalidInput(
            f"batch row {i} is not [id, x]: each row is a list of an int or string id and "
            "the input (or, for a function of several parameters, [id, a, b, ...])",
            row=i,
        )
    try:
        if len(row) == 2:
            return bind(row[1], signature)
        if _max_positional(signature) < 2:
            raise InvalidInput(
                f"batch row {i} is not [id, x]: the function takes one positional "
                f"argument, and the row has {len(row) - 1} values after its id",
                row=i,
            )
        return bind_positional(row[1:], signature)
    except InvalidInput as exc:
        if exc.detail.get("row") == i:
            raise
        raise InvalidInput(f"batch row {i}: {exc.message}", row=i, **exc.detail) from None


def calls_for(body: dict[str, Any], signature: Sequence[dict[str, Any]]
              ) -> tuple[list[Call], list[Any] | None]:
    """The calls a body asks for, and the batch ids (None for a single request)."""
    data = body["data"]
    if not is_batch(body, signature):
        return [bind(data, signature)], None
    if not isinstance(data, list) or not data:
        raise InvalidInput("a batch is a non-empty list of [id, x] rows")
    calls: list[Call] = []
    ids: list[Any] = []
    if _one_positional(signature):
        # the common function, f(x): a row [id, x] is the call ([x], {}) (bind's answer,
        # without working the signature out again for each of a large batch's rows)
        for i, row in enumerate(data):
            if type(row) is list and len(row) == 2 and type(row[0]) in (int, str):
                calls.append(([row[1]], {}))
            else:
                calls.append(_bind_row(i, row, signature))
            ids.append(row[0])
        return calls, ids
    for i, row in enumerate(data):
        calls.append(_bind_row(i, row, signature))
        ids.append(row[0])
    return calls, ids


def _one_positional(signature: Sequence[dict[str, Any]]) -> bool:
    """Whether the function takes exactly one parameter, positionally (``bind`` then
    passes the data as its one argument)."""
    return len(signature) == 1 and signature[0]["kind"] in _POSITIONAL


def frame_calls_for(body: dict[str, Any], columns: Sequence[dict[str, Any]]
                    ) -> tuple[list[Call], list[Any] | None]:
    """DataFrame mode: each row an object of column values, all rows one DataFrame.

    Single ``{"data": {column: value}}`` (one row) or batch ``[[id, {column: value}], ...]``
    (Modelbit's shape; its client sends a DataFrame so). Each call carries one row's object.
    """
    data = body["data"]
    names = [c["name"] for c in columns]
    batch = body.get("batch")
    if batch is not None and not isinstance(batch, bool):
        raise InvalidInput("'batch' must be true or false")
    if batch is False or isinstance(data, dict):
        if not isinstance(data, dict):
            raise InvalidInput(
                "this deployment is in DataFrame mode: send one row as "
                f"{{\"data\": {{column: value}}}} (columns: {', '.join(names)}) or a batch of "
                "[id, {column: value}] rows")
        return [([data], {})], None
    if not isinstance(data, list) or not data:
        raise InvalidInput(
            "this deployment is in DataFrame mode: send a batch of [id, {column: value}] rows "
            f"(columns: {', '.join(names)}) or one row as {{\"data\": {{column: value}}}}")
    calls: list[Call] = []
    ids: list[Any] = []
    for i, row in enumerate(data):
        if not (_is_row(row) and isinstance(row[1], dict)):
            raise InvalidInput(
                f"batch row {i} is not [id, {{column: value}}]: this deployment is in "
                f"DataFrame mode (columns: {', '.join(names)})", row=i)
        ids.append(row[0])
        calls.append(([row[1]], {}))
    return calls, ids


# ---------------------------------------------------------------------- request options


RESPONSE_FORMATS = ("json",)


@dataclass(frozen=True)
class CallOptions:
    """What the body asks beside ``data``."""

    timeout: float | None = None  # seconds, already capped by the deployment's timeout


def call_options(body: dict[str, Any], deployment_timeout: float) -> CallOptions:
    """Read ``timeout_seconds`` and ``response_format`` (Modelbit's request fields).

    ``timeout_seconds`` is a positive number, capped by the deployment's timeout (a caller
    may ask for less time, never more); ``response_format`` may be ``"json"`` (the default);
    Modelbit's ``"links"`` (results stored in S3) and ``response_webhook`` (asynchronous
    answers) are refused with a 400 saying so, rather than ignored.
    """
    timeout: float | None = None
    raw = body.get("timeout_seconds")
    if raw is not None:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0 or (
                not math.isfinite(raw)):
            raise InvalidInput("'timeout_seconds' must be a positive number of seconds")
        timeout = min(float(raw), deployment_timeout)
    fmt = body.get("response_format")
    if fmt is not None and fmt not in RESPONSE_FORMATS:
        if fmt == "links":
            raise InvalidInput(
                "'response_format': 'links' is not supported: champion answers inline; "
                "leave response_format out (or send \"json\") and split large batches")
        raise InvalidInput(f"'response_format' must be \"json\" (or absent), not {fmt!r}")
    if body.get("response_webhook") is not None:
        raise InvalidInput(
            "'response_webhook' is not supported: champion answers synchronously; leave it "
            "out and wait for the answer")
    return CallOptions(timeout=timeout)


def request_calls(body: dict[str, Any], signature: Sequence[dict[str, Any]],
                  manifest: dict[str, Any]) -> tuple[list[Call], list[Any] | None]:
    """The calls for a version: DataFrame rows when it was deployed in DataFrame mode."""
    columns = manifest.get("dataframe")
    if columns:
        return frame_calls_for(body, columns)
    return calls_for(body, signature)


def worker_message(manifest: dict[str, Any], calls: list[Call], ids: list[Any] | None
                   ) -> dict[str, Any]:
    """The CALL frame's body (runtime/protocol.py); DataFrame mode adds the columns."""
    message: dict[str, Any] = {"calls": calls, "ids": ids}
    columns = manifest.get("dataframe")
    if columns:
        message["frame"] = [{"name": c["name"], "dtype": c.get("dtype")} for c in columns]
    return message
