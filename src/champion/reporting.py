"""Experiment reports for people: the terminal rendering of a report's ``view``.

Every strategy's report carries a ``view`` (a headline, alerts, tables and charts); this
module prints it, whatever the strategy. Charts are the dashboard's; the terminal shows the
tables, and says where the charts are.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.panel import Panel

from champion.console import print_table


def _num(value: Any, spec: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return format(value, spec)


def cell(value: Any, fmt: str) -> str:
    """One table cell in the column's format (text, int, num, pct, ms, p, ci, pct_ci, time)."""
    if fmt in ("ci", "pct_ci"):
        if not isinstance(value, dict) or value.get("estimate") is None:
            return "-"
        spec = ".2%" if fmt == "pct_ci" else ".4g"
        return (f"{_num(value['estimate'], spec)} [{_num(value.get('low'), spec)}, "
                f"{_num(value.get('high'), spec)}]")
    if fmt == "time":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "-"
        return datetime.fromtimestamp(value, UTC).astimezone().strftime("%H:%M:%S")
    specs = {"int": ",.0f", "num": ".4g", "pct": ".2%", "ms": ".2f", "p": ".3g"}
    if fmt in specs:
        return _num(value, specs[fmt])
    return "-" if value is None else str(value)


def render_report(data: dict[str, Any], console: Console) -> None:
    title = (f"{data['experiment']} ({data['strategy']} on {data['endpoint']}, "
             f"{data['status']})")
    console.print(f"[bold]{title}[/]", highlight=False)
    if data.get("error"):
        console.print(f"[red]{data['error']}[/]", highlight=False)
        return
    view = data.get("view") or {}
    for a in view.get("alerts", []):
        style = {"error": "bold red", "warning": "yellow"}.get(a.get("level"), "cyan")
        console.print(Panel(a.get("message", ""), title=a.get("title"), style=style))
    for t in view.get("tables", []):
        columns = t.get("columns", [])
        print_table([c["label"] for c in columns],
                    [[cell(row.get(c["key"]), c.get("format", "text")) for c in columns]
                     for row in t.get("rows", [])], title=t.get("title"), out=console)
    if view.get("headline"):
        console.print(view["headline"], highlight=False, markup=False)
    if view.get("charts"):
        names = ", ".join(c["title"] for c in view["charts"])
        console.print(f"[dim]charts on the dashboard: {names}[/]", highlight=False)
