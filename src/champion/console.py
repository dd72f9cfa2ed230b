"""What every ``champion`` command shares: the consoles, one-line errors, times."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from champion.errors import ChampionError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print one error line and exit 1."""
    # soft_wrap: one line however narrow the terminal (or COLUMNS, when piped), so that a
    # script or a log keeps it whole; Text: the message is not read as markup ("[...]").
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False,
                      soft_wrap=True)
    sys.exit(1)


def handle_errors(fn: F) -> F:
    """Print every error as one line, without a traceback (CHAMPION_DEBUG=1 shows it).

    A server's answer says its status; an error on this side (no server reached, a file
    that cannot be read) says what failed.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChampionError as exc:
            status = f" ({exc.status_code})" if exc.status_code and not exc.local else ""
            fail(f"{exc.message}{status}")
        except KeyboardInterrupt:
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except OSError as exc:
            _debug()
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            fail(f"{exc.strerror or type(exc).__name__}{where}")
        except Exception as exc:
            _debug()
            fail(f"unexpected {type(exc).__name__}: {exc} (CHAMPION_DEBUG=1 shows the "
                 "traceback; please report it)")

    return wrapper  # type: ignore[return-value]


def _debug() -> None:
    if os.environ.get("CHAMPION_DEBUG"):
        traceback.print_exc()


def user_frames(exc: BaseException, path: str) -> str:
    """The part of a traceback in the user's own file ``path``: ``file:line in fn: code``."""
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            lines.append(f"  {frame.filename}:{frame.lineno} in {frame.name}: "
                         f"{(frame.line or '').strip()}")
    return "\n".join(lines)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                title: str | None = None, out: Console | None = None) -> None:
    """A table that fits the terminal: columns fold their text rather than truncate it, and
    a terminal too narrow for them gets one ``key: value`` block per row instead."""
    out = out or console
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    needed = sum(min(w, 40) for w in widths) + 3 * len(columns) + 1
    if needed > out.width and len(columns) > 2:
        if title:
            out.print(f"[bold]{title}[/]", highlight=False)
        key_width = max(len(c) for c in columns)
        for n, row in enumerate(cells):
            if n:
                out.print("")
            for col, value in zip(columns, row, strict=True):
                out.print(f"{col:>{key_width}}: {value}", highlight=False, markup=False)
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in cells:
        table.add_row(*row)
    out.print(table)


def when(ts: float | None) -> str:
    """A Unix time as local date and time, or '' for none."""
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
