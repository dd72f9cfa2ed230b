"""Every page's code blocks run when pasted in order (README.md and docs/*.md).

One test per page: a fresh directory and a fresh server each (see tests/docsrun.py for what
runs and how output is checked). A failure names the page, the line, the snippet and its
output. ``python -m tests.docsrun docs/PAGE.md`` runs one page by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.docsrun import PAGES, ROOT, DocsError, run_page

TIMINGS = os.environ.get("CHAMPION_DOCS_TIMINGS", "")  # a JSON-lines file to append reports to


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_when_pasted_in_order(page: Path, tmp_path: Path) -> None:
    try:
        report = run_page(page, tmp_path / page.stem)
    except DocsError as exc:
        pytest.fail(str(exc), pytrace=False)
    if TIMINGS:
        with open(TIMINGS, "a", encoding="utf-8") as f:
            f.write(json.dumps(report.__dict__) + "\n")
    print(f"{report.page}: {report.executed} snippets run, {len(report.skipped)} skipped, "
          f"{report.seconds:.1f} s")
