"""What a failure of the store means to a caller: the store is down (503), or its disk is
full (507); anything else stays a bug of ours (500).

The driver's own text never reaches the caller (it names hosts, databases, files); the
server log has it. A full disk is also remembered for a while, so that /readyz can say so.
"""

from __future__ import annotations

import errno
import time

import sqlalchemy as sa

from champion.errors import ChampionError, InsufficientStorage, Unavailable

FULL_MEMORY_S = 60.0  # /readyz reports a full disk this long after the last write it failed
_last_full = 0.0

NO_SPACE = ("no space left on the store's disk: nothing was stored; free some space "
            "(the server log has the details)")
DOWN = "the store is not answering: nothing was stored; try again shortly"


# The exceptions a store operation may fail with (the server maps them with store_failure).
STORE_EXCEPTIONS: tuple[type[BaseException], ...] = (sa.exc.SQLAlchemyError, OSError)


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        orig = exc.orig
        if getattr(orig, "sqlstate", None) == "53100":  # PostgreSQL's disk_full
            return True
        text = str(orig).lower()
        return "disk is full" in text or "no space left" in text
    return False


def store_failure(exc: BaseException) -> ChampionError | None:
    """The error to answer for ``exc`` if it is the store failing, else None."""
    global _last_full
    if _is_full(exc):
        _last_full = time.monotonic()
        return InsufficientStorage(NO_SPACE)
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        return Unavailable(DOWN)
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return Unavailable(DOWN)
    return None


def recently_full() -> bool:
    """Whether a write failed for want of space within the last minute."""
    return _last_full > 0 and time.monotonic() - _last_full < FULL_MEMORY_S
