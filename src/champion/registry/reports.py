"""Experiment reports: gather sufficient statistics from the store, hand them to analysis/."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson

from champion.analysis.report import (
    ArmData,
    Guardrail,
    MetricSums,
    ShadowPair,
    ab_report,
    shadow_report,
)
from champion.store import Store


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def gather_ab(store: Store, row: dict[str, Any]) -> list[ArmData]:
    """Per arm: exposure and, per metric, sums over units (units without feedback count 0)."""
    config = row["config"]
    exposure = store.arm_exposure(row["id"])
    per_unit = store.arm_unit_metrics(row["id"], row["endpoint"])
    covariate_name = (config.get("metrics") or {}).get("covariate")
    # metric -> is every unit-level value 0/1 (across all arms)?
    binary: dict[str, bool] = defaultdict(lambda: True)
    values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in per_unit:
        if r["non_binary"]:
            binary[r["metric"]] = False
        values[(r["arm"], r["metric"])][r["unit"]] = r["sum"]
    for (_arm, metric), units in values.items():
        if binary[metric] and any(v not in (0.0, 1.0) for v in units.values()):
            # several 0/1 events for one unit: a conversion metric counts the unit once
            for unit, v in units.items():
                units[unit] = 1.0 if v > 0 else 0.0
    covariate: dict[str, float] = {}
    arm_units: dict[str, list[str]] = defaultdict(list)
    if covariate_name:
        covariate = store.unit_covariate(row["endpoint"], covariate_name)
        for arm, unit in store.arm_units(row["id"]):
            arm_units[arm].append(unit)
    weights = _weights(row)
    metrics = sorted({m for _, m in values})
    arms: list[ArmData] = []
    for name in config["variants"]:
        exp = exposure.get(name, {"requests": 0, "units": 0, "errors": 0,
                                  "latency_ms": {"mean": None, "p50": None, "p90": None,
                                                 "p99": None}})
        sums: dict[str, MetricSums] = {}
        for metric in metrics:
            unit_values = values.get((name, metric), {})
            total = sum(unit_values.values())
            total_sq = sum(v * v for v in unit_values.values())
            ms = MetricSums(n=exp["units"], sum=total, sum_sq=total_sq, binary=binary[metric])
            if covariate_name and metric != covariate_name:
                xs = [(covariate.get(u, 0.0), unit_values.get(u, 0.0))
                      for u in arm_units.get(name, [])]
                ms.x_sum = sum(x for x, _ in xs)
                ms.x_sum_sq = sum(x * x for x, _ in xs)
                ms.xy_sum = sum(x * y for x, y in xs)
            sums[metric] = ms
        arms.append(ArmData(name=name, weight=weights.get(name, 0.0),
                            requests=exp["requests"], units=exp["units"],
                            errors=exp["errors"], latency_ms=exp["latency_ms"], metrics=sums))
    return arms


def _weights(row: dict[str, Any]) -> dict[str, float]:
    config = row["config"]
    if row["strategy"] != "ab":
        return {n: 1.0 for n in config["variants"]}
    policy = {**config["policy"], **{k: v for k, v in (row["state"] or {}).items()
                                     if k in ("weights", "owner_runs")}}
    return dict(zip(policy["variants"], map(float, policy["weights"]), strict=True))


def build_ab(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    config = row["config"]
    metrics = config.get("metrics") or {}
    arms = gather_ab(store, row)
    guardrails = [Guardrail(g["metric"], g.get("bad", "decrease"))
                  for g in metrics.get("guardrails", []) or []]
    since = (row["state"] or {}).get("reweighted_at")
    srm_units = store.arm_units_since(row["id"], since) if since else None
    report = ab_report(arms, config["control"], alpha=float(config.get("alpha", 0.05)),
                       primary=metrics.get("primary"), guardrails=guardrails,
                       srm_units=srm_units)
    if since:
        report["srm"]["since"] = since
    return report


def build_shadow(store: Store, row: dict[str, Any], runtime_status: dict[str, int]
                 ) -> dict[str, Any]:
    shadow_cfg = row["config"].get("shadow", {})
    pairs_by_arm: dict[str, list[ShadowPair]] = defaultdict(list)
    for r in store.shadow_pairs(row["id"]):
        pairs_by_arm[r["arm"]].append(ShadowPair(
            live=_json(r["live"]), shadow=_json(r["shadow"]),
            live_ms=float(r["live_ms"]), shadow_ms=float(r["shadow_ms"]),
            live_ok=r["live_status"] == 200, shadow_ok=r["shadow_status"] == 200,
            label=_json(r["label"])))
    shadows = [n for n in row["config"]["variants"] if n != row["config"]["control"]]
    return {
        "shadows": {
            name: shadow_report(pairs_by_arm.get(name, []), kind=shadow_cfg.get("kind", "auto"),
                                field=shadow_cfg.get("field"),
                                alpha=float(row["config"].get("alpha", 0.05)),
                                dropped=runtime_status.get("dropped", 0))
            for name in shadows
        },
        "mirroring": runtime_status,
    }


async def build(store: Store, row: dict[str, Any], runtime_status: dict[str, int]
                ) -> dict[str, Any]:
    if row["strategy"] == "shadow":
        body = await asyncio.to_thread(build_shadow, store, row, runtime_status)
    else:
        body = await asyncio.to_thread(build_ab, store, row)
    return {"experiment": row["id"], "endpoint": row["endpoint"], "strategy": row["strategy"],
            "status": row["status"], "variants": row["config"]["variants"],
            "control": row["config"]["control"], **body}
