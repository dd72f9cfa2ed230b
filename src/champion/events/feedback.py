"""Feedback items: what the feedback API accepts, checked one by one.

Forms (any may add ``"ts"``, a Unix time):

* ``{"request_id": ..., "reward": r}``: the metric ``reward``
* ``{"request_id": ..., "metric": "revenue", "value": 9.5}``
* ``{"request_id": ..., "label": y}``: ground truth, any JSON value (metric ``label``)
* ``{"request_id": ..., "clicks": [...]}``: clicked items (metric ``clicks``): item ids,
  0-based positions, or objects ``{"item": ID, "weight": 9.5}`` / ``{"position": 2}`` (a
  weight is e.g. a purchase value); with ``"event_id"``, clicks sent one post at a time
* ``{"unit": "user-7", "metric": ..., "value": ...}``: by unit; add ``"event_id"`` to make a
  retry idempotent

A request id must be one this server issued (it is signed). Per (request id, metric) the
first feedback counts; retries are reported as duplicates and not counted again. Clicks
with an ``event_id`` count once per (request id, event id) instead, so that the clicks of
one answer may arrive as they happen. Whether a click was on an item the answer showed is
not known here (that is in the request log): the report counts clicks on items never shown.
What the id carries (the experiment, the arm, the version, when it was served) is kept on
the row, so feedback is credited to the arm that served it even when the request's log
entry was lost.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from champion.events.ids import RequestIds

MAX_ITEMS = 10_000
METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
RESERVED = {"reward", "label", "clicks"}


@dataclass
class ItemError:
    index: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": "invalid_feedback", "message": self.message}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, not {type(value).__name__} {value!r:.40}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number")
    return number


MAX_CLICKS = 1000
_CLICK_FORMS = ("an item id (a string or integer), a 0-based position, or an object "
                "{\"item\": ID} / {\"position\": N} with an optional \"weight\" >= 0")


def _clicks(value: Any) -> list[Any]:
    """Check the shape of a clicks list (what each click refers to is the report's
    business: only the request log knows the list that was shown)."""
    if not isinstance(value, list):
        raise ValueError("'clicks' must be a list of clicked items")
    if len(value) > MAX_CLICKS:
        raise ValueError(f"at most {MAX_CLICKS} clicks per feedback item")
    for i, click in enumerate(value):
        if isinstance(click, dict):
            unknown = set(click) - {"item", "position", "weight"}
            refs = [k for k in ("item", "position") if k in click]
            ok = not unknown and len(refs) == 1
            ref = click.get(refs[0]) if ok else None
            if refs == ["position"]:
                ok = isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0
            elif ok:
                ok = isinstance(ref, (str, int)) and not isinstance(ref, bool)
            if ok and "weight" in click:
                weight = click["weight"]
                ok = (isinstance(weight, (int, float)) and not isinstance(weight, bool)
                      and math.isfinite(weight) and weight >= 0)
        else:
            ok = isinstance(click, str) or (isinstance(click, int)
                                            and not isinstance(click, bool) and click >= 0)
        if not ok:
            raise ValueError(f"clicks[{i}] must be {_CLICK_FORMS}, not {str(click)[:60]!r}")
    return value


def _json_text(value: Any, what: str) -> str:
    """A JSON value as the text the store keeps (read at up to 1024 levels, orjson writes
    at most 254)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise ValueError(f"{what} is nested too deeply (over 250 levels)") from None


def parse_item(item: Any, deployment: str, ids: RequestIds, now: float) -> dict[str, Any]:
    """One feedback row for the store, or ValueError saying what is wrong."""
    if not isinstance(item, dict):
        raise ValueError(f"a feedback item is a JSON object, not {type(item).__name__}")
    request_id = item.get("request_id")
    unit = item.get("unit")
    if request_id is None and unit is None:
        raise ValueError("feedback needs a 'request_id' (or a 'unit')")
    carried = ids.attribution(request_id) if isinstance(request_id, str) else None
    if request_id is not None and carried is None:
        raise ValueError(f"request id {str(request_id)[:80]!r} was not issued by this server")
    if unit is not None and (not isinstance(unit, (str, int)) or isinstance(unit, bool)
                             or len(str(unit)) > 256):
        raise ValueError("'unit' must be a string of at most 256 characters")
    if isinstance(unit, str) and "\x00" in unit:
        raise ValueError("'unit' must not contain a NUL character")
    value: float | None = None
    label: str | None = None
    kinds = [k for k in ("reward", "label", "clicks", "metric") if k in item]
    if len(kinds) != 1:
        raise ValueError(
            "give exactly one of 'reward', 'label', 'clicks' or 'metric' with 'value'"
            if kinds else "feedback needs one of 'reward', 'metric' + 'value', 'label', 'clicks'"
        )
    kind = kinds[0]
    if kind == "reward":
        metric = "reward"
        value = _number(item["reward"], "'reward'")
    elif kind == "label":
        metric = "label"
        label = _json_text(item["label"], "'label'")
    elif kind == "clicks":
        metric = "clicks"
        label = _json_text(_clicks(item["clicks"]), "'clicks'")
        value = float(len(item["clicks"]))
    else:
        metric = item["metric"]
        if not isinstance(metric, str) or not METRIC_RE.match(metric):
            raise ValueError(f"invalid metric name {str(metric)[:80]!r}: letters, digits, "
                             "'_', '.', ':', '-', starting with a letter or '_'")
        if metric in RESERVED:
            raise ValueError(f"use the {metric!r} field for the metric {metric!r}")
        if "value" not in item:
            raise ValueError(f"metric {metric!r} needs a numeric 'value'")
        value = _number(item["value"], f"the value of metric {metric!r}")
    ts = item.get("ts", now)
    ts = _number(ts, "'ts'") if ts is not now else now
    event_id = item.get("event_id")
    if event_id is not None and (isinstance(event_id, bool) or not isinstance(
            event_id, (str, int)) or len(str(event_id)) > 128):
        raise ValueError("'event_id' must be a string of at most 128 characters")
    if isinstance(event_id, str) and "\x00" in event_id:
        raise ValueError("'event_id' must not contain a NUL character")
    if request_id is not None and kind == "clicks" and event_id is not None:
        dedup: str | None = f"{request_id}#{event_id}"
    elif request_id is not None:
        dedup = request_id
    elif event_id is not None:
        dedup = f"unit:{unit}:{event_id}"[:320]
    else:
        dedup = None
    return {
        "ts": ts,
        "deployment": deployment,
        "request_id": request_id,
        "unit": str(unit) if unit is not None else None,
        "metric": metric,
        "value": value,
        "label": label,
        "dedup": dedup,
        # what served the request, from its id (see events/ids.py); the arm's name is
        # filled in from the experiment's variants before the row is stored
        "experiment": carried.experiment if carried else None,
        "arm": None,
        "arm_index": carried.arm if carried else None,
        "version": carried.version if carried else None,
        "served_at": carried.served_at if carried else None,
    }


def parse_batch(body: Any, deployment: str, ids: RequestIds
                ) -> tuple[list[tuple[int, dict[str, Any]]], list[ItemError], bool]:
    """Rows to store (with their indexes), item errors, and whether the body was a batch."""
    now = time.time()
    if isinstance(body, list):
        items, batch = body, True
    elif isinstance(body, dict) and "feedback" in body:
        items, batch = body["feedback"], True
        if not isinstance(items, list):
            raise ValueError("'feedback' must be a list of feedback items")
    else:
        items, batch = [body], False
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[ItemError] = []
    for i, item in enumerate(items):
        try:
            rows.append((i, parse_item(item, deployment, ids, now)))
        except ValueError as exc:
            errors.append(ItemError(i, str(exc)))
    return rows, errors, batch
