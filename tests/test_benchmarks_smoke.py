"""The benchmark suite's quick mode runs end to end and measures the floor and champion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # seconds each: `pytest -m "not slow"` skips them

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(90)
def test_quick_benchmark_measures_floor_and_champion(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        message = "wrk is not installed: apt-get update && apt-get install -y wrk"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHAMPION_")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    table = (out / "latest.md").read_text()
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 3 and cells[0] in ("floor", "champion"):
            rows[(cells[0], cells[1])] = cells
    assert {("floor", "1 row"), ("champion", "1 row"), ("floor", "batch of 100"),
            ("champion", "batch of 100")} <= rows.keys(), table
    assert "*champion ÷ floor*" in table

    summary = json.loads((out / "latest.json").read_text())["summary"]
    for system in ("floor", "champion"):
        assert summary[system]["status"] == "ok", summary[system]
        for kind in ("single", "batch"):
            point = summary[system]["points"][kind]["8"]
            assert point["rps"] > 0, (system, kind, point)
            assert point["p50_ms"] > 0
    assert summary["champion"]["start"]["deploy_first_answer_s"] > 0
    assert summary["champion"]["raw_single_p50_s"] > 0
