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
    start = summary["champion"]["start"]
    assert start["deploy_first_answer_s"] > 0
    assert 0 < start["next_deploy_first_answer_s"] < start["cold_start_s"] + 30
    assert "a second version deployed 2 s later" in table
    meta = json.loads((out / "latest.json").read_text())["meta"]
    assert meta["bytecode"]["ok"], meta["bytecode"]
    assert summary["champion"]["raw_single_p50_s"] > 0


@pytest.mark.timeout(150)
def test_paired_figures_alternate_rounds_and_leave_nothing_running(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed: apt-get update && apt-get install -y wrk")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--systems", "floor,champion", "--repeats", "1",
         "--duration", "1", "--concurrency", "8", "--requests", "single", "--raw-seconds",
         "0.3", "--pair-rounds", "2", "--out", str(out), "--keep-work"],
        cwd=REPO, capture_output=True, text=True, timeout=140,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHAMPION_")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "latest.json").read_text())
    pair = results["pairs"]["one request at a time: champion p50 ÷ floor p50, c=1"]
    assert pair["system"] == "champion" and pair["base"] == "floor"
    assert len(pair["ratios"]) == 2 and len(pair["values"]["base"]) == 2
    assert all(r > 0 for r in pair["ratios"])
    assert pair["median"] == sorted(pair["ratios"])[0] + (
        sorted(pair["ratios"])[1] - sorted(pair["ratios"])[0]) / 2
    # the pairs whose systems were not run are left out, not guessed
    assert set(results["pairs"]) == {"one request at a time: champion p50 ÷ floor p50, c=1"}
    assert "| one request at a time: champion p50 ÷ floor p50, c=1 |" in (
        out / "latest.md").read_text()
    # every server the pairs started (and stopped with SIGSTOP between rounds) is gone
    work = next(line.split("work directory ", 1)[1].strip()
                for line in proc.stderr.splitlines() if "work directory " in line)
    logs = list(Path(work).glob("pair-*.log"))
    assert {p.name for p in logs} == {"pair-floor.log", "pair-champion.log"}
    leftover = subprocess.run(["pgrep", "-f", work], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout


@pytest.mark.timeout(120)
def test_the_report_reads_benchmark_measures_each_read_at_each_size(tmp_path: Path) -> None:
    out = tmp_path / "reads.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.reports", "--sizes", "1000,3000", "--repeats", "1",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=100,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHAMPION_")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")
            and not line.startswith("| read ")]
    assert len(rows) == 5, proc.stdout
    assert all(len(r.strip("|").split("|")) == 5 for r in rows), rows
    points = json.loads(out.read_text())["points"]
    assert [p["n"] for p in points] == [1000, 3000]
    for p in points:
        for key in ("interleave_report_read_s", "bandit_first_update_s", "bandit_next_update_s",
                    "ab_exposure_s", "ab_unit_metrics_s"):
            assert p[key] > 0, (key, p)
