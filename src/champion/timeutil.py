"""Times as people type them: Unix seconds, ISO 8601, or an age such as ``90s``, ``1h``, ``7d``."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 1e10  # about 300 years: longer durations and later times are typing errors


def _finite(value: float, text: str, what: str) -> float:
    if not math.isfinite(value) or abs(value) > MAX_SECONDS:
        raise ValueError(f"not a {what}: {text[:40]!r} (out of range)")
    return value


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``5m``, ``1h``, ``7d``, ``2w`` or a bare number of seconds."""
    value = text.strip().lower()
    match = _AGE.match(value)
    if match:
        return _finite(float(match.group(1)) * _UNIT[match.group(2)], text, "duration")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"not a duration: {text[:40]!r} (try 30s, 5m, 1h, 7d)") from None
    return _finite(seconds, text, "duration")


def parse_time(text: str, now: float | None = None) -> float:
    """A Unix time from ``1732800000``, ``2026-11-28T14:00:00`` or an age like ``1h`` (ago)."""
    value = text.strip()
    current = time.time() if now is None else now
    if _AGE.match(value.lower()):
        return current - parse_duration(value)
    try:
        return _finite(float(value), text, "time")
    except ValueError as exc:
        if "out of range" in str(exc):
            raise
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.astimezone()
        return dt.timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"not a time: {text[:40]!r} (give Unix seconds, ISO 8601, or an age such as 1h)"
        ) from None
