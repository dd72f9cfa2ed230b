"""Automatic decisions: stop and promote an A/B winner when the report finds one.

Every server process runs this loop; the store's state check makes the stop happen once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from champion.errors import ChampionError
from champion.registry import Registry
from champion.registry.reports import build

log = logging.getLogger("champion.controller")


async def decide_once(registry: Registry, status: Callable[[str], dict[str, int]]
                      ) -> list[dict[str, Any]]:
    """Act on every running experiment with automatic decisions on; returns what was done."""
    done: list[dict[str, Any]] = []
    rows = await asyncio.to_thread(registry.store.list_experiments, None, "running")
    for row in rows:
        auto = row["config"].get("auto") or {}
        if not auto.get("enabled") or row["strategy"] != "ab":
            continue
        report = await build(registry.store, row, status(row["id"]))
        winner = (report.get("decision") or {}).get("winner")
        units = sum(a.get("units", 0) for a in report.get("arms", []))
        if not winner or units < int(auto.get("min_units", 100)):
            continue
        reason = (f"automatic: {winner} won on {row['config']['metrics']['primary']} "
                  f"(sequential test at alpha {row['config'].get('alpha', 0.05)})")
        try:
            result = await registry.experiments.transition(
                row["id"], "stop", "champion", reason, {"promote": winner})
        except ChampionError as exc:
            log.info("automatic decision on %s not applied: %s", row["id"], exc.message)
            continue
        log.warning("experiment %s stopped: %s", row["id"], reason)
        done.append(result)
    return done


async def run(registry: Registry, status: Callable[[str], dict[str, int]],
              interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await decide_once(registry, status)
        except Exception:
            log.exception("the decision loop failed; trying again")
