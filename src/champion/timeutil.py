"""Times as people type them: Unix seconds, ISO 8601, or an age such as ``90s``, ``1h``, ``7d``."""

from __future__ import annotations

import re
import time
from datetime import datetime

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``5m``, ``1h``, ``7d``, ``2w`` or a bare number of seconds."""
    value = text.strip().lower()
    match = _AGE.match(value)
    if match:
        return float(match.group(1)) * _UNIT[match.group(2)]
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (try 30s, 5m, 1h, 7d)") from None


def parse_time(text: str, now: float | None = None) -> float:
    """A Unix time from ``1732800000``, ``2026-11-28T14:00:00`` or an age like ``1h`` (ago)."""
    value = text.strip()
    current = time.time() if now is None else now
    if _AGE.match(value.lower()):
        return current - parse_duration(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (give Unix seconds, ISO 8601, or an age such as 1h)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()
