"""From a request body to worker calls: the shapes of ``{"data": ...}``.

* single: ``{"data": x}``; for a function of several parameters ``{"data": [a, b]}`` or
  ``{"data": {"a": ..., "b": ...}}``.
* batch: ``{"data": [[id, x], [id, x], ...]}``: a list whose first element is a two-element
  list starting with an int or string id. ``"batch": true|false`` in the body says it
  outright when a single input would look like a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from champion.errors import InvalidInput

Call = tuple[list[Any], dict[str, Any]]

_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


def _is_row(row: Any) -> bool:
    return (
        isinstance(row, list)
        and len(row) == 2
        and isinstance(row[0], (int, str))
        and not isinstance(row[0], bool)
    )


def is_batch(body: dict[str, Any]) -> bool:
    flag = body.get("batch")
    if flag is not None:
        if not isinstance(flag, bool):
            raise InvalidInput("'batch' must be true or false")
        return flag
    data = body["data"]
    return isinstance(data, list) and len(data) > 0 and _is_row(data[0])


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


def calls_for(body: dict[str, Any], signature: Sequence[dict[str, Any]]
              ) -> tuple[list[Call], list[Any] | None]:
    """The calls a body asks for, and the batch ids (None for a single request)."""
    data = body["data"]
    if not is_batch(body):
        return [bind(data, signature)], None
    if not isinstance(data, list) or not data:
        raise InvalidInput("a batch is a non-empty list of [id, x] rows")
    calls: list[Call] = []
    ids: list[Any] = []
    for i, row in enumerate(data):
        if not _is_row(row):
            raise InvalidInput(
                f"batch row {i} is not [id, x]: each row is a two-element list whose first "
                "element is an int or string id",
                row=i,
            )
        ids.append(row[0])
        try:
            calls.append(bind(row[1], signature))
        except InvalidInput as exc:
            raise InvalidInput(f"batch row {i}: {exc.message}", row=i, **exc.detail) from None
    return calls, ids
