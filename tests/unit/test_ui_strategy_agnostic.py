"""Nothing in the dashboard names an experiment strategy: reports are drawn from what they say."""

from __future__ import annotations

import re
from pathlib import Path

import champion.server.ui as ui

UI = Path(ui.__file__).resolve().parent
NAMES = ("ab", "shadow", "canary", "interleave", "interleaving", "bandit")


def test_no_dashboard_file_names_a_strategy():
    files = [p for p in UI.rglob("*") if p.suffix in (".py", ".js", ".html", ".css")
             and "vendor" not in p.parts]
    assert files
    quoted, words = "|".join(NAMES), "|".join(NAMES[1:])
    pattern = re.compile(rf"""["'`]({quoted})["'`]|\b({words})\b""", re.IGNORECASE)
    offenders = [f"{p.relative_to(UI)}:{n}: {line.strip()}"
                 for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, "the dashboard names a strategy:\n" + "\n".join(offenders)
