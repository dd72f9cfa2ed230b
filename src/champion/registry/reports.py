"""Experiment reports: gather the sufficient statistics a strategy asks for, let it report.

A strategy's ``needs`` names statistics (``arms``, ``units_since``, ``window``,
``shadow_pairs``, ``mirroring``, ``details``, ``rewards``, ``pulls``) with their parameters; each
has a gatherer here that reads the store. The strategy's ``report`` turns them into JSON.
Nothing here names a strategy.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from champion.registry.experiments import loaded
from champion.registry.windows import WINDOWS, LatencySpec
from champion.store import Store
from champion.strategies import SettingsError

if TYPE_CHECKING:
    from champion.analysis.report import ArmData, ShadowPair

# Seconds after which feedback for a request not in the log counts as a lost row's.
UNLOGGED_GRACE_S = 2.0

Gatherer = Callable[[Store, Mapping[str, Any], Mapping[str, Any], "Context"], Any]


class Context:
    """What gatherers may need beyond the store: this process's runtime counters."""

    def __init__(self, runtime_status: Mapping[str, int] | None = None) -> None:
        self.runtime_status = dict(runtime_status or {})


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def gather_arms(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                ctx: Context) -> list[ArmData]:
    """Per arm: exposure and, per metric, sums over units (units without feedback count 0)."""
    from champion.analysis.report import ArmData, MetricSums  # scipy: loaded when needed

    config = row["config"]
    exposure = store.arm_exposure(row["id"])
    # A request's log row lands within the writer's flush interval (100 ms by default);
    # feedback for one served in the last 2 s and not in the log yet waits for it.
    per_unit = store.arm_unit_metrics(row["id"], row["endpoint"],
                                      settled_before=time.time() - UNLOGGED_GRACE_S)
    covariate_name = (config.get("metrics") or {}).get("covariate")
    # metric -> is every unit-level value 0/1 (across all arms)?
    binary: dict[str, bool] = defaultdict(lambda: True)
    values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    # Units whose feedback counts though their requests' log rows were lost (a hard kill):
    # the exposure (from the log) misses them, so they are added to the arm's units.
    unlogged: dict[str, set[str]] = defaultdict(set)
    logged: dict[str, set[str]] = defaultdict(set)
    for r in per_unit:
        if r["non_binary"]:
            binary[r["metric"]] = False
        values[(r["arm"], r["metric"])][r["unit"]] = r["sum"]
        (logged if r.get("logged", True) else unlogged)[r["arm"]].add(r["unit"])
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
    metrics = sorted({m for _, m in values})
    arms: list[ArmData] = []
    for name in config["variants"]:
        exp = dict(exposure.get(name, {"requests": 0, "units": 0, "errors": 0,
                                       "latency_ms": {"mean": None, "p50": None, "p90": None,
                                                      "p99": None}}))
        exp["units"] += len(unlogged[name] - logged[name])
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
        arms.append(ArmData(name=name, weight=0.0, requests=exp["requests"],
                            units=exp["units"], errors=exp["errors"],
                            latency_ms=exp["latency_ms"], metrics=sums))
    return arms


def gather_units_since(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                       ctx: Context) -> dict[str, int]:
    """Per arm: distinct units with a request at or after ``since``."""
    return store.arm_units_since(row["id"], float(params["since"]))


def gather_window(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                  ctx: Context) -> dict[str, Any]:
    """Per arm over a time window: requests, errors, feedback sums and, with ``latency``
    ({"width", "q", "min_samples"}), the latency quantile per interval. Folded in once per
    process and read incrementally (registry/windows.py): a canary asks every second."""
    since = float(params["since"])
    until = None if params.get("until") is None else float(params["until"])
    lat = params.get("latency")
    spec = None if not lat else LatencySpec(
        width=float(lat["width"]), q=float(lat["q"]), min_samples=int(lat.get("min_samples", 1)),
        cap=int(params.get("samples", 20_000)))
    experiment = str(row["id"])
    arms = list(row["config"]["variants"])
    out: dict[str, Any] = WINDOWS.read(
        str(store.engine.url), experiment, since, until, spec,
        lambda a, b: store.arm_rows(experiment, arms, a, b))
    metrics = store.arm_window_metrics(experiment, row["endpoint"], since,
                                       list(params.get("metrics") or []), until=until)
    for arm, data in out.items():
        data["metrics"] = metrics.get(arm, {})
    return out


def gather_shadow_pairs(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                        ctx: Context) -> dict[str, list[ShadowPair]]:
    """Per shadow arm: the live and shadow answers of the same requests, with any label."""
    from champion.analysis.report import ShadowPair

    by_arm: dict[str, list[ShadowPair]] = defaultdict(list)
    for r in store.shadow_pairs(row["id"], int(params.get("limit", 100_000))):
        by_arm[r["arm"]].append(ShadowPair(
            live=_json(r["live_output"]), shadow=_json(r["shadow_output"]),
            live_ms=float(r["live_ms"]), shadow_ms=float(r["shadow_ms"]),
            live_ok=r["live_status"] == 200, shadow_ok=r["shadow_status"] == 200,
            label=_json(r["label"])))
    return dict(by_arm)


def gather_mirroring(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                     ctx: Context) -> dict[str, int]:
    """This process's counters of mirrored, dropped and failed shadow calls."""
    return dict(ctx.runtime_status)


def gather_details(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                   ctx: Context) -> dict[str, Any]:
    """The details kept of merged answers (newest ``limit``, oldest first), each with the
    feedback of ``metric`` sent for its request (parsed labels and values)."""
    got = store.merged_requests(row["id"], row["endpoint"],
                                str(params.get("metric", "clicks")),
                                int(params.get("limit", 50_000)))
    requests = []
    for r in got["requests"]:
        detail = _json(r["detail"])
        if isinstance(detail, dict):
            requests.append({"request_id": r["request_id"], "ts": r["ts"], "unit": r["unit"],
                             "detail": detail})
    feedback = {rid: [{"label": _json(f["label"]), "value": f["value"], "ts": f["ts"]}
                      for f in items] for rid, items in got["feedback"].items()}
    return {"requests": requests, "total": got["total"], "feedback": feedback,
            "truncated": got["total"] > len(got["requests"])}


def gather_rewards(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                   ctx: Context) -> dict[str, Any]:
    """One metric's feedback credited to each arm by the request ids themselves (no join
    with the request log): on-time and late counts, sums, per period, the newest values."""
    return store.arm_rewards(row["id"], row["endpoint"], str(params["metric"]),
                             window_seconds=float(params["window_seconds"]),
                             cutoff=float(params["cutoff"]),
                             period=int(params.get("period", 3600)),
                             newest=int(params.get("newest", 0)))


def gather_pulls(store: Store, row: Mapping[str, Any], params: Mapping[str, Any],
                 ctx: Context) -> dict[str, Any]:
    """Per arm, from the request log: requests, errors, answered (before a cutoff), recent."""
    return store.arm_pulls(row["id"], cutoff=float(params["cutoff"]),
                           recent_since=float(params["recent_since"]))


GATHERERS: dict[str, Gatherer] = {
    "arms": gather_arms,
    "units_since": gather_units_since,
    "window": gather_window,
    "baseline": gather_window,
    "shadow_pairs": gather_shadow_pairs,
    "mirroring": gather_mirroring,
    "details": gather_details,
    "rewards": gather_rewards,
    "pulls": gather_pulls,
}


def build_sync(store: Store, row: Mapping[str, Any],
               runtime_status: Mapping[str, int] | None = None, *, now: float | None = None,
               rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The experiment's report (synchronous: run it in a thread from the event loop)."""
    now = time.time() if now is None else now
    head = {"experiment": row["id"], "endpoint": row["endpoint"],
            "strategy": row["strategy"], "status": row["status"],
            "variants": row["config"]["variants"], "control": row["config"]["control"],
            "generated_at": now}
    try:
        strategy, settings, exp = loaded(row)
    except SettingsError as exc:
        return {**head, "error": f"cannot report on this experiment here: {exc}"}
    state = dict(row["state"] or {})
    ctx = Context(runtime_status)
    stats: dict[str, Any] = {}
    for name, params in strategy.needs(settings, state, exp, now).items():
        gatherer = GATHERERS.get(name)
        if gatherer is None:
            raise KeyError(f"strategy {strategy.name!r} needs unknown statistics {name!r}")
        stats[name] = gatherer(store, row, params, ctx)
    body = strategy.report(settings, state, exp, stats, now,
                           rng if rng is not None else np.random.default_rng())
    return {**head, **body}


async def build(store: Store, row: Mapping[str, Any],
                runtime_status: Mapping[str, int] | None = None) -> dict[str, Any]:
    return await asyncio.to_thread(build_sync, store, row, runtime_status)
