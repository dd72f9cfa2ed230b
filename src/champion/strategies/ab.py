"""A/B: a weighted, sticky split; per-variant statistics; optionally an automatic decision.

Units hash into buckets owned by variants (:class:`~champion.routing.ab.ABPolicy`); the
ownership table is the hot state, so re-weighting moves only the units it must. The report
is :func:`~champion.analysis.report.ab_report` (SRM, lifts, sequential p-values, chance to
beat control, CUPED, sample sizes). With ``auto`` on, the controller stops the experiment
and promotes the winner once the sequential test finds one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from champion.routing.ab import ABPolicy
from champion.routing.base import RoutingPolicy
from champion.strategies.base import (
    Experiment,
    State,
    Step,
    Strategy,
    alert,
    chart,
    column,
    register,
    table,
    view,
)
from champion.strategies.settings import SettingsError, setting

if TYPE_CHECKING:
    from champion.analysis.report import ArmData


@dataclass(frozen=True)
class ABSettings:
    weights: dict[str, float] | None = setting(
        None, "Weight per variant, normalised by their sum (default: equal).", cli=False)
    coverage: float = setting(1.0, "Share of units in the experiment; the rest get the control.",
                              low=0.0, high=1.0)
    n_star: int = setting(5000, "Sequential test tuning: the expected total units at the "
                          "decision (GrowthBook's default).", low=100, high=10**9)
    mde: float = setting(0.05, "Relative lift the sample-size estimate is for.",
                         above=0.0, high=10.0)
    correction: Literal["holm", "bh", "none"] = setting(
        "holm", "Multiple-testing correction across candidates and metrics (not "
        "guardrails): holm (family-wise error), bh (Benjamini-Hochberg, false discovery "
        "rate) or none. Decisions use the corrected sequential p-value.")


def _weights_in(settings: ABSettings, exp: Experiment) -> list[float]:
    given = settings.weights or {v: 1.0 for v in exp.variants}
    return [float(given[v]) for v in exp.variants]


class AB(Strategy[ABSettings]):
    name = "ab"
    summary = "weighted sticky split with per-variant statistics and significance"
    settings_type = ABSettings

    def legacy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {k: body[k] for k in ("weights", "coverage") if body.get(k) is not None}

    def check(self, settings: ABSettings, exp: Experiment) -> None:
        if settings.weights is not None:
            if set(settings.weights) != set(exp.variants):
                raise SettingsError("ab.weights", f"needs one weight per variant: "
                                    f"{list(exp.variants)}")
            values = list(settings.weights.values())
            if any(w < 0 for w in values) or not sum(values) > 0:
                raise SettingsError("ab.weights", "weights are >= 0 and not all zero")
        if exp.auto.get("enabled") and not exp.metrics.get("primary"):
            raise SettingsError("auto", "automatic decisions need metrics.primary")

    def _policy(self, settings: ABSettings, state: State, exp: Experiment) -> ABPolicy:
        return ABPolicy.from_config({
            "variants": list(exp.variants),
            "weights": state.get("weights") or _weights_in(settings, exp),
            "salt": exp.salt,
            "coverage": settings.coverage,
            "owner_runs": state.get("owner_runs"),
        })

    def initial_state(self, settings: ABSettings, exp: Experiment) -> State:
        policy = ABPolicy(exp.variants, tuple(_weights_in(settings, exp)), exp.salt,
                          settings.coverage)
        config = policy.to_config()
        return {"weights": config["weights"], "owner_runs": config["owner_runs"]}

    def policy(self, settings: ABSettings, state: State, exp: Experiment) -> RoutingPolicy:
        return self._policy(settings, state, exp)

    def describe(self, settings: ABSettings, state: State, exp: Experiment) -> dict[str, Any]:
        policy = self._policy(settings, state, exp)
        return {"weights": dict(zip(policy.variants, policy.weights, strict=True)),
                "ab": self.dump(settings)}

    def reweight(self, settings: ABSettings, state: State, exp: Experiment,
                 weights: Mapping[str, float], now: float) -> State:
        current = self._policy(settings, state, exp)
        if set(weights) != set(current.variants):
            raise SettingsError("weights", f"needs one weight per variant: "
                                f"{list(current.variants)}")
        try:
            new = current.reweighted([float(weights[n]) for n in current.variants])
        except ValueError as exc:
            raise SettingsError("weights", str(exc)) from None
        # Units seen from now on are all assigned under the new weights: the SRM check counts
        # those, against these weights (a weight change starts a new phase, spec §3.5).
        return {**state, "weights": list(new.weights),
                "owner_runs": new.to_config()["owner_runs"], "reweighted_at": now}

    def needs(self, settings: ABSettings, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {"arms": {}}
        if state.get("reweighted_at"):
            out["units_since"] = {"since": state["reweighted_at"]}
        return out

    def report(self, settings: ABSettings, state: State, exp: Experiment,
               stats: Mapping[str, Any], now: float, rng: np.random.Generator
               ) -> dict[str, Any]:
        from champion.analysis.report import ArmData, Guardrail, ab_report  # scipy, lazily

        weights = dict(zip(exp.variants, self._policy(settings, state, exp).weights,
                           strict=True))
        arms: list[ArmData] = [
            ArmData(name=a.name, weight=weights.get(a.name, 0.0), requests=a.requests,
                    units=a.units, errors=a.errors, latency_ms=a.latency_ms, metrics=a.metrics)
            for a in stats["arms"]
        ]
        guardrails = [Guardrail(g["metric"], g.get("bad", "decrease"))
                      for g in exp.metrics.get("guardrails", []) or []]
        body = ab_report(arms, exp.control, alpha=exp.alpha, primary=exp.metrics.get("primary"),
                         guardrails=guardrails, srm_units=stats.get("units_since"),
                         n_star=settings.n_star, mde=settings.mde,
                         correction=settings.correction)
        if state.get("reweighted_at"):
            body["srm"]["since"] = state["reweighted_at"]
        body["weights"] = weights
        body["view"] = _view(body, exp)
        return body

    def cadence(self, settings: ABSettings, exp: Experiment) -> float | None:
        return 5.0 if exp.auto.get("enabled") else None

    def step(self, settings: ABSettings, state: State, exp: Experiment,
             report: Mapping[str, Any], now: float) -> Step | None:
        if not exp.auto.get("enabled"):
            return None
        winner = (report.get("decision") or {}).get("winner")
        units = sum(a.get("units", 0) for a in report.get("arms", []))
        if not winner or units < int(exp.auto.get("min_units", 100)):
            return None
        reason = (f"automatic: {winner} won on {exp.metrics.get('primary')} "
                  f"(sequential test at alpha {exp.alpha})")
        return Step(action="stop", decision={"promote": winner}, reason=reason)

    def promotable(self, settings: ABSettings, state: State, exp: Experiment,
                   report: Mapping[str, Any] | None) -> str | None:
        return ((report or {}).get("decision") or {}).get("winner")

    def snapshot(self, report: Mapping[str, Any]) -> dict[str, Any] | None:
        arms = report.get("arms") or []
        total = sum(a.get("units") or 0 for a in arms)
        point: dict[str, Any] = {
            "units": {a["name"]: a.get("units") or 0 for a in arms},
            "share": {a["name"]: (a.get("units") or 0) / total if total else None
                      for a in arms},
            "target": dict(report.get("weights") or {}),
            "lift": {}, "p": {}, "srm_p": (report.get("srm") or {}).get("p_value"),
        }
        primary = report.get("primary")
        for c in report.get("comparisons") or []:
            if c["metric"] != primary:
                continue
            seq = (c.get("sequential") or {}).get("absolute") or {}
            point["lift"][c["arm"]] = {"estimate": seq.get("estimate"),
                                       "low": seq.get("ci_low"), "high": seq.get("ci_high")}
            point["p"][c["arm"]] = (c.get("sequential") or {}).get("p_value")
        return point


def _finite(x: Any) -> Any:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def _view(body: Mapping[str, Any], exp: Experiment) -> dict[str, Any]:
    srm = body.get("srm") or {}
    alerts = []
    if srm.get("fired"):
        alerts.append(alert("srm", "error", "Sample ratio mismatch (SRM)", srm.get("message", ""),
                            greys=("comparisons", "lift", "means", "p")))
    arms = body.get("arms") or []
    arm_rows = [{"variant": a["name"], "version": exp.labels.get(a["name"], ""),
                 "weight": a.get("weight"), "units": a.get("units"),
                 "requests": a.get("requests"), "error_rate": a.get("error_rate"),
                 "p50": (a.get("latency_ms") or {}).get("p50"),
                 "p99": (a.get("latency_ms") or {}).get("p99")} for a in arms]
    comps = body.get("comparisons") or []
    comp_rows = []
    for c in comps:
        rel, ab = c.get("relative") or {}, c.get("absolute") or {}
        comp_rows.append({
            "variant": c["arm"], "metric": c["metric"], "control": c.get("control_mean"),
            "treatment": c.get("treatment_mean"),
            "lift": {"estimate": ab.get("estimate"), "low": ab.get("ci_low"),
                     "high": ab.get("ci_high")},
            "relative": {"estimate": rel.get("estimate"), "low": rel.get("ci_low"),
                         "high": rel.get("ci_high")},
            "p": c.get("p_value"), "seq_p": (c.get("sequential") or {}).get("p_value"),
            "ctw": c.get("chance_to_beat_control")})
    means = []
    metric_names = sorted({m for a in arms for m in (a.get("metrics") or {})})
    for metric in metric_names:
        series = {"label": metric, "x": [], "y": [], "low": [], "high": []}
        for a in arms:
            m = (a.get("metrics") or {}).get(metric) or {}
            series["x"].append(a["name"])
            series["y"].append(_finite(m.get("mean")))
            series["low"].append(_finite(m.get("ci_low")))
            series["high"].append(_finite(m.get("ci_high")))
        means.append(series)
    candidates = [a["name"] for a in arms if a["name"] != exp.control]
    charts = [
        chart("share", "Traffic share over time (dashed: target)", "line",
              [{"label": v, "path": f"share.{v}"} for v in exp.variants]
              + [{"label": f"{v} target", "path": f"target.{v}", "dashed": True}
                 for v in exp.variants], source="timeline", y_format="pct"),
        chart("means", "Mean per variant with its interval", "bar", means, x_format="text"),
        chart("lift", f"Cumulative lift on {body.get('primary') or 'the primary metric'} "
              "with its confidence sequence", "band",
              [{"label": v, "path": f"lift.{v}.estimate", "low_path": f"lift.{v}.low",
                "high_path": f"lift.{v}.high"} for v in candidates], source="timeline"),
        chart("p", "Always-valid p-value", "line",
              [{"label": v, "path": f"p.{v}"} for v in candidates], source="timeline",
              y_format="p"),
    ]
    decision = body.get("decision") or {}
    headline = (f"winner: {decision['winner']}: {decision.get('reason', '')}"
                if decision.get("winner") else f"no winner yet: {decision.get('reason', '')}")
    return view(headline, alerts=alerts, charts=charts, tables=[
        table("variants", "Variants", [
            column("variant", "variant"), column("version", "version"),
            column("weight", "weight", "pct"), column("units", "units", "int"),
            column("requests", "requests", "int"), column("error_rate", "error rate", "pct"),
            column("p50", "p50 ms", "ms"), column("p99", "p99 ms", "ms")], arm_rows),
        table("comparisons", f"Against {exp.control}", [
            column("variant", "variant"), column("metric", "metric"),
            column("control", "control", "num"), column("treatment", "variant mean", "num"),
            column("lift", "lift [CI]", "ci"), column("relative", "relative", "pct_ci"),
            column("p", "p", "p"), column("seq_p", "always-valid p", "p"),
            column("ctw", "P(beats control)", "pct")], comp_rows),
    ])


register(AB())
