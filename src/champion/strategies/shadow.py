"""Shadow: the control answers; the other variants get a copy of the traffic off the path.

A deterministic share of requests (hashed from the request id, or the unit) is mirrored to
each shadow variant after the live answer is sent; the report compares their outputs with
the live ones on the same requests (agreement, kappa, McNemar with labels, or differences
for regression), their latency and their output drift (spec §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from champion.routing.base import RoutingPolicy
from champion.routing.shadow import ShadowPolicy
from champion.strategies.base import (
    Experiment,
    State,
    Strategy,
    chart,
    column,
    register,
    table,
    view,
)
from champion.strategies.settings import setting


@dataclass(frozen=True)
class ShadowSettings:
    percent: float = setting(100.0, "Share of requests (percent) mirrored to each shadow.",
                             low=0.0, high=100.0)
    sample_by: Literal["request", "unit"] = setting(
        "request", "Sample by request id, or by unit (a unit's requests all or none).")
    kind: Literal["auto", "classification", "regression"] = setting(
        "auto", "How outputs are compared (auto: regression for fractional numbers).")
    field: str | None = setting(None, "The key of the prediction in dict outputs "
                                "(default: label, prediction, class, y).")


class Shadow(Strategy[ShadowSettings]):
    name = "shadow"
    summary = "the control answers; candidates get a mirrored copy off the request path"
    settings_type = ShadowSettings

    def legacy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"percent": body["percent"]} if body.get("percent") is not None else {}

    def policy(self, settings: ShadowSettings, state: State, exp: Experiment) -> RoutingPolicy:
        return ShadowPolicy(exp.control, exp.candidates,
                            tuple(settings.percent for _ in exp.candidates), exp.salt,
                            settings.sample_by)

    def describe(self, settings: ShadowSettings, state: State, exp: Experiment
                 ) -> dict[str, Any]:
        return {"shadow": self.dump(settings)}

    def needs(self, settings: ShadowSettings, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        return {"shadow_pairs": {}, "mirroring": {}}

    def report(self, settings: ShadowSettings, state: State, exp: Experiment,
               stats: Mapping[str, Any], now: float, rng: np.random.Generator
               ) -> dict[str, Any]:
        from champion.analysis.report import shadow_report  # scipy: imported when needed

        mirroring = dict(stats.get("mirroring") or {})
        pairs = stats.get("shadow_pairs") or {}
        shadows = {
            name: shadow_report(pairs.get(name, []), kind=settings.kind, field=settings.field,
                                alpha=exp.alpha, dropped=int(mirroring.get("dropped", 0)))
            for name in exp.candidates
        }
        body: dict[str, Any] = {"shadows": shadows, "mirroring": mirroring}
        body["view"] = _view(shadows, mirroring, exp)
        return body

    def snapshot(self, report: Mapping[str, Any]) -> dict[str, Any] | None:
        point: dict[str, Any] = {"agreement": {}, "pairs": {}}
        for name, rep in (report.get("shadows") or {}).items():
            point["pairs"][name] = (rep.get("counts") or {}).get("compared")
            agreement = rep.get("agreement") or {}
            point["agreement"][name] = agreement.get("rate")
        return point


def _view(shadows: Mapping[str, Any], mirroring: Mapping[str, Any], exp: Experiment
          ) -> dict[str, Any]:
    rows = []
    latency_series = []
    for name, rep in shadows.items():
        counts = rep.get("counts") or {}
        agreement = rep.get("agreement") or {}
        labels = rep.get("labels") or {}
        latency = rep.get("latency") or {}
        live, shadow = latency.get("live") or {}, latency.get("shadow") or {}
        rows.append({
            "variant": name, "version": exp.labels.get(name, ""), "kind": rep.get("kind"),
            "compared": counts.get("compared"), "pairs": counts.get("pairs"),
            "shadow_error_rate": counts.get("shadow_error_rate"),
            "agreement": ({"estimate": agreement.get("rate"), "low": agreement.get("ci_low"),
                           "high": agreement.get("ci_high")} if agreement else None),
            "kappa": agreement.get("kappa"),
            "mcnemar_p": (labels.get("mcnemar") or {}).get("p_value"),
            "live_p50": live.get("p50"), "shadow_p50": shadow.get("p50"),
            "drift": "detected" if (rep.get("drift") or {}).get("detected") else "none"})
        latency_series.append({"label": f"{name} (shadow)", "x": ["p50", "p90", "p99"],
                               "y": [shadow.get("p50"), shadow.get("p90"), shadow.get("p99")]})
    if shadows:
        first = next(iter(shadows.values()))
        live = ((first.get("latency") or {}).get("live")) or {}
        latency_series.insert(0, {"label": f"{exp.control} (live)", "x": ["p50", "p90", "p99"],
                                  "y": [live.get("p50"), live.get("p90"), live.get("p99")]})
    headline = (f"mirrored {mirroring.get('mirrored', 0)}, dropped "
                f"{mirroring.get('dropped', 0)}, failed {mirroring.get('failed', 0)} "
                "(this server process)")
    return view(headline, tables=[table("shadows", f"Shadows against {exp.control}", [
        column("variant", "shadow"), column("version", "version"), column("kind", "kind"),
        column("compared", "pairs compared", "int"),
        column("shadow_error_rate", "shadow error rate", "pct"),
        column("agreement", "agreement [CI]", "pct_ci"), column("kappa", "kappa", "num"),
        column("mcnemar_p", "McNemar p", "p"), column("live_p50", "live p50 ms", "ms"),
        column("shadow_p50", "shadow p50 ms", "ms"), column("drift", "output drift")], rows)],
        charts=[
            chart("latency", "Latency, live and shadow (ms)", "bar", latency_series,
                  x_format="text", y_format="ms"),
            chart("agreement", "Agreement over time", "line",
                  [{"label": n, "path": f"agreement.{n}"} for n in shadows],
                  source="timeline", y_format="pct"),
        ])


register(Shadow())
