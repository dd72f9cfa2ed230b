"""What every ``champion`` command shares: the consoles, one-line errors, times."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from rich.console import Console

from champion.errors import ChampionError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print one error line and exit 1."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(1)


def handle_errors(fn: F) -> F:
    """Print champion errors as one line, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChampionError as exc:
            status = f" ({exc.status_code})" if exc.status_code else ""
            fail(f"{exc.message}{status}")
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def when(ts: float | None) -> str:
    """A Unix time as local date and time, or '' for none."""
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
