"""Canary: the candidate's traffic in steps, judged against the concurrent control.

The candidate gets ``steps[0]`` percent of the endpoint's units (sticky, like A/B), then the
next step once the current one has baked ``step_seconds``, holds ``min_requests`` candidate
requests and passes every guardrail; after the last step it is promoted (or held at 100 %).
Guardrails compare the candidate with the control over the same window (spec §5.5):

* error rate: an absolute limit on the candidate (broken ``consecutive`` checks in a row
  roll back), then a Newcombe interval on the difference against a margin: its lower bound
  above the margin rolls back at once, its upper bound below passes, else the step holds;
* latency: a percentile per interval for each arm, judged by Kayenta's Mann-Whitney
  classifier (spec §5.1): "High" rolls back; an optional absolute limit too;
* feedback metrics: a one-sided test per metric; a significant move in the bad direction
  rolls back.

Too little data is its own state: the step holds and never advances or promotes; the
deadline (``max_seconds`` from the start) turns a hold into a rollback. A rollback stops the
experiment (the candidate gets no more traffic) and leaves ``production`` where it was.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
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
from champion.strategies.settings import SettingsError, nested, setting

if TYPE_CHECKING:
    from champion.analysis.canary import Classification


@dataclass(frozen=True)
class ErrorRateGuard:
    max_rate: float = setting(0.01, "Absolute limit on the candidate's error rate.",
                              low=0.0, high=1.0)
    consecutive: int = setting(2, "Checks in a row over max_rate before rolling back.",
                               low=1, high=100)
    margin: float = setting(0.0005, "Smallest tolerated rise of the error rate over the "
                            "control (absolute).", low=0.0, high=1.0)
    relative_margin: float = setting(0.25, "Tolerated rise relative to the control's rate "
                                     "(the margin is the larger of the two).", low=0.0,
                                     high=10.0)
    alpha: float = setting(0.01, "One-sided error level per side of the interval.",
                           above=0.0, high=0.25)
    sequential: bool = setting(False, "Use the anytime-valid confidence sequence instead of "
                               "the Newcombe interval.")


@dataclass(frozen=True)
class LatencyGuard:
    percentile: float = setting(99.0, "The latency percentile compared per interval.",
                                above=0.0, high=100.0)
    max_ratio: float = setting(1.10, "Largest tolerated ratio of mean interval latency, "
                               "candidate over control.", low=1.0, high=100.0)
    tolerance: float = setting(0.25, "Kayenta's tolerance on the Hodges-Lehmann shift.",
                               low=0.0, high=10.0)
    confidence: float = setting(0.98, "Confidence of the Mann-Whitney interval.",
                                above=0.5, high=0.9999)
    max_ms: float | None = setting(None, "Absolute limit on the candidate's percentile (ms).",
                                   above=0.0)
    min_intervals: int = setting(3, "Intervals with data in both arms before judging.",
                                 low=2, high=10_000)
    min_samples: int = setting(5, "Requests an interval needs in an arm to count.", low=1,
                               high=1_000_000)


@dataclass(frozen=True)
class MetricGuard:
    metric: str = setting("", "A feedback metric (reward, or a named metric).")
    bad: Literal["decrease", "increase"] = setting("decrease", "Which direction is harmful.")
    alpha: float = setting(0.01, "One-sided level of the test.", above=0.0, high=0.25)


@dataclass(frozen=True)
class Guardrails:
    error_rate: ErrorRateGuard | None = nested(ErrorRateGuard, "The error-rate guardrail "
                                               "(false to turn it off).")
    latency: LatencyGuard | None = nested(LatencyGuard, "The latency guardrail (false to "
                                          "turn it off).")
    metrics: tuple[MetricGuard, ...] = nested(tuple, "Feedback-metric guardrails.")


@dataclass(frozen=True)
class CanarySettings:
    steps: tuple[float, ...] = setting((5.0, 25.0, 50.0, 100.0),
                                       "Candidate traffic percent per step, increasing.",
                                       above=0.0, high=100.0, max_items=100)
    step_seconds: float = setting(600.0, "Minimum bake time of each step.", low=0.0,
                                  high=30 * 86400.0)
    min_requests: int = setting(1000, "Candidate (and control) requests a step needs before "
                                "it may pass.", low=1, high=10**9)
    max_seconds: float = setting(14400.0, "Deadline from the start: still undecided, the "
                                 "canary rolls back.", above=0.0, high=365 * 86400.0)
    interval_seconds: float = setting(60.0, "Width of the latency intervals judged.",
                                      above=0.0, high=86400.0)
    on_success: Literal["promote", "hold"] = setting(
        "promote", "After the last step: promote the candidate, or hold it at 100 %.")
    guardrails: Guardrails = nested(Guardrails, "error_rate, latency and metrics.", cli=False)


Verdict = Literal["pass", "fail", "hold", "insufficient"]


@dataclass(frozen=True)
class _Gate:
    name: str
    verdict: Verdict
    message: str
    figures: dict[str, Any]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


class Canary(Strategy[CanarySettings]):
    name = "canary"
    summary = "candidate traffic in steps with guardrails; promotes or rolls back by itself"
    settings_type = CanarySettings
    min_variants = 2
    max_variants = 2

    # ------------------------------------------------------------ settings and routing

    def check(self, settings: CanarySettings, exp: Experiment) -> None:
        steps = settings.steps
        if not steps:
            raise SettingsError("canary.steps", "give at least one step")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise SettingsError("canary.steps", f"must increase, got {list(steps)}")
        if steps[0] >= 100:
            raise SettingsError("canary.steps", "the first step must be below 100 %: the "
                                "candidate is judged against the control's concurrent traffic")
        if settings.on_success == "promote" and not exp.own_variant(exp.candidates[0]):
            raise SettingsError("canary.on_success", f"the candidate "
                                f"{exp.labels[exp.candidates[0]]} is not a version of "
                                f"{exp.endpoint!r}, so it cannot be promoted; use 'hold'")
        for g in settings.guardrails.metrics:
            if not g.metric:
                raise SettingsError("canary.guardrails.metrics", "each needs a 'metric'")

    def _weights(self, percent: float) -> list[float]:
        return [100.0 - percent, percent]

    def initial_state(self, settings: CanarySettings, exp: Experiment) -> State:
        percent = settings.steps[0]
        policy = ABPolicy(exp.variants, tuple(self._weights(percent)), exp.salt)
        return {"step": 0, "percent": percent, "entered_at": None, "phase": "stepping",
                "owner_runs": policy.to_config()["owner_runs"], "slo_breaches": 0,
                "history": [], "timeline": []}

    def policy(self, settings: CanarySettings, state: State, exp: Experiment) -> RoutingPolicy:
        return ABPolicy.from_config({
            "variants": list(exp.variants), "weights": self._weights(state["percent"]),
            "salt": exp.salt, "owner_runs": state.get("owner_runs")})

    def describe(self, settings: CanarySettings, state: State, exp: Experiment
                 ) -> dict[str, Any]:
        percent = float(state.get("percent", 0.0))
        return {"canary": self.dump(settings), "step": state.get("step", 0),
                "candidate_percent": percent,
                "weights": dict(zip(exp.variants, (1 - percent / 100, percent / 100),
                                    strict=True))}

    def promotable(self, settings: CanarySettings, state: State, exp: Experiment,
                   report: Mapping[str, Any] | None) -> str | None:
        return exp.candidates[0]

    def cadence(self, settings: CanarySettings, exp: Experiment) -> float | None:
        return 1.0

    # ------------------------------------------------------------ report

    @staticmethod
    def _entered(state: State, exp: Experiment, now: float) -> float:
        return float(state.get("entered_at") or exp.started_at or now)

    def _metric_names(self, settings: CanarySettings, exp: Experiment) -> list[str]:
        names = [g.metric for g in settings.guardrails.metrics]
        names += [g["metric"] for g in exp.metrics.get("guardrails", []) or []]
        return list(dict.fromkeys(names))

    def needs(self, settings: CanarySettings, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        entered = self._entered(state, exp, now)
        metrics = self._metric_names(settings, exp)
        g = settings.guardrails.latency
        # the latency per interval is summarised where the rows are read (once per row)
        latency = None if g is None else {"width": settings.interval_seconds,
                                          "q": g.percentile / 100.0,
                                          "min_samples": g.min_samples}
        out = {"window": {"since": entered, "metrics": metrics, "latency": latency}}
        history = state.get("history") or []
        if state["percent"] >= 100 and history:
            # No control traffic at 100 %: the control of the step before is the baseline.
            out["baseline"] = {"since": history[-1]["entered_at"], "until": entered,
                               "metrics": metrics, "latency": latency}
        return out

    def _metric_guards(self, settings: CanarySettings, exp: Experiment) -> list[MetricGuard]:
        guards = list(settings.guardrails.metrics)
        known = {g.metric for g in guards}
        for g in exp.metrics.get("guardrails", []) or []:
            if g["metric"] not in known:
                guards.append(MetricGuard(g["metric"], g.get("bad", "decrease")))
        return guards

    def report(self, settings: CanarySettings, state: State, exp: Experiment,
               stats: Mapping[str, Any], now: float, rng: np.random.Generator
               ) -> dict[str, Any]:
        control, candidate = exp.control, exp.candidates[0]
        window = stats.get("window") or {}
        empty: dict[str, Any] = {"requests": 0, "errors": 0, "latencies": [], "metrics": {}}
        base, cand = window.get(control, empty), window.get(candidate, empty)
        entered = self._entered(state, exp, now)
        baseline_from = "concurrent"
        base_start = entered
        if "baseline" in stats:
            base = (stats["baseline"] or {}).get(control, empty)
            baseline_from = "previous step"
            base_start = float((state.get("history") or [{}])[-1].get("entered_at", entered))
        guards = settings.guardrails
        gates: list[_Gate] = []
        if guards.error_rate is not None:
            gates.append(self._error_gate(guards.error_rate, settings, state, base, cand))
        latency_series: dict[str, dict[str, list[Any]]] = {}
        if guards.latency is not None:
            gate, latency_series = self._latency_gate(guards.latency, settings, entered,
                                                      base_start, base, cand)
            gates.append(gate)
        for g in self._metric_guards(settings, exp):
            gates.append(self._metric_gate(g, settings, base, cand))
        status, nxt = self._next(settings, state, exp, gates, cand, entered, now)
        from champion.analysis.canary import score  # the statistics (scipy) load when needed

        classified = [g.figures.get("label", "Pass" if g.verdict == "pass" else "Nodata")
                      for g in gates if g.verdict != "hold"]
        total, verdict = score(classified or ["Pass"], critical_fail=any(
            g.verdict == "fail" for g in gates))
        percent = float(state["percent"])
        timeline = [*state.get("timeline", [])]
        if not timeline or timeline[-1][1] != percent:
            timeline.append([entered, percent])
        n_total = base["requests"] + cand["requests"]
        body: dict[str, Any] = {
            "canary": self.dump(settings),
            "phase": state.get("phase", "stepping"),
            "status": status,
            "next": nxt,
            "step": {
                "index": state["step"], "count": len(settings.steps), "percent": percent,
                "entered_at": entered, "elapsed": max(now - entered, 0.0),
                "bake_seconds": settings.step_seconds, "min_requests": settings.min_requests,
                "requests": {control: base["requests"], candidate: cand["requests"]},
                "errors": {control: base["errors"], candidate: cand["errors"]},
                "share": cand["requests"] / n_total if n_total else None,
                "baseline": baseline_from,
            },
            "guardrails": [{"name": g.name, "verdict": g.verdict, "message": g.message,
                            "figures": g.figures} for g in gates],
            "score": {"value": total, "class": verdict},
            "history": state.get("history", []),
            "timeline": [{"ts": t, "percent": p} for t, p in timeline],
            "deadline": (exp.started_at or entered) + settings.max_seconds,
            "latency_series": latency_series,
            "slo_breaches": state.get("slo_breaches", 0),
        }
        body["view"] = _view(body, exp)
        return _jsonable(body)

    def _error_gate(self, g: ErrorRateGuard, settings: CanarySettings, state: State,
                    base: Mapping[str, Any], cand: Mapping[str, Any]) -> _Gate:
        from champion.analysis.canary import error_rate_gate

        r = error_rate_gate(base["errors"], base["requests"], cand["errors"], cand["requests"],
                            margin_abs=g.margin, relative_margin=g.relative_margin,
                            slo_max=g.max_rate, alpha=g.alpha, min_n=settings.min_requests,
                            sequential=g.sequential, n_tune=max(settings.min_requests, 1000))
        figures: dict[str, Any] = {
            "decision": r.decision, "control_rate": r.baseline_rate,
            "candidate_rate": r.canary_rate, "difference": r.difference, "ci_low": r.ci_low,
            "ci_high": r.ci_high, "margin": r.margin, "max_rate": g.max_rate,
            "control_requests": base["requests"], "candidate_requests": cand["requests"]}
        if r.decision == "insufficient":
            return _Gate("error_rate", "insufficient", f"error rate: waiting for "
                         f"{settings.min_requests} requests per arm (candidate "
                         f"{cand['requests']}, control {base['requests']})", figures)
        if r.decision == "slo":
            breaches = int(state.get("slo_breaches", 0)) + 1
            figures["consecutive"] = breaches
            message = (f"error rate {_pct(r.canary_rate)} over the limit of "
                       f"{_pct(g.max_rate)} (control {_pct(r.baseline_rate)}), "
                       f"{breaches} of {g.consecutive} checks in a row")
            figures["label"] = "High"
            return _Gate("error_rate", "fail" if breaches >= g.consecutive else "hold",
                         message, figures)
        ci = f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]"
        if r.decision == "worse":
            figures["label"] = "High"
            return _Gate("error_rate", "fail", f"error rate {_pct(r.canary_rate)} against "
                         f"{_pct(r.baseline_rate)} for the control: the rise {ci} is above "
                         f"the margin of {_pct(r.margin)}", figures)
        if r.decision == "pass":
            figures["label"] = "Pass"
            return _Gate("error_rate", "pass", f"error rate {_pct(r.canary_rate)} against "
                         f"{_pct(r.baseline_rate)}: non-inferior (rise {ci} below the "
                         f"margin of {_pct(r.margin)})", figures)
        return _Gate("error_rate", "hold", f"error rate {_pct(r.canary_rate)} against "
                     f"{_pct(r.baseline_rate)}: inconclusive (rise {ci} straddles the margin "
                     f"of {_pct(r.margin)})", figures)

    def _latency_gate(self, g: LatencyGuard, settings: CanarySettings, entered: float,
                      base_start: float, base: Mapping[str, Any], cand: Mapping[str, Any]
                      ) -> tuple[_Gate, dict[str, dict[str, list[Any]]]]:
        from champion.analysis.canary import classify

        name = f"latency_p{g.percentile:g}"
        q = g.percentile / 100.0
        control, overall_b = _latency_summary(base, base_start, settings.interval_seconds, q,
                                              g.min_samples)
        canary, overall_c = _latency_summary(cand, entered, settings.interval_seconds, q,
                                             g.min_samples)
        intervals = min(len(control), len(canary))
        series = {
            "control": {"x": [base_start + i * settings.interval_seconds
                              for i in sorted(control)],
                        "y": [control[i] for i in sorted(control)]},
            "candidate": {"x": [entered + i * settings.interval_seconds for i in sorted(canary)],
                          "y": [canary[i] for i in sorted(canary)]},
        }
        figures: dict[str, Any] = {"percentile": g.percentile, "intervals": intervals,
                                   "control_ms": overall_b, "candidate_ms": overall_c,
                                   "max_ratio": g.max_ratio, "max_ms": g.max_ms}
        if intervals < g.min_intervals:
            return _Gate(name, "insufficient", f"p{g.percentile:g} latency: {intervals} of "
                         f"{g.min_intervals} intervals with data in both arms", figures
                         ), series
        c: Classification = classify(list(control.values()), list(canary.values()),
                                     direction="increase", tolerance=g.tolerance,
                                     confidence=g.confidence, allowed_increase=g.max_ratio,
                                     critical=True)
        figures.update(label=c.label, ci_low=c.ci[0] if c.ci else None,
                       ci_high=c.ci[1] if c.ci else None, shift_ms=c.estimate,
                       mean_ratio=c.mean_ratio)
        what = (f"p{g.percentile:g} latency {_ms(overall_c)} against {_ms(overall_b)} for the "
                f"control")
        if g.max_ms is not None and overall_c is not None and overall_c > g.max_ms:
            figures["label"] = "High"
            return _Gate(name, "fail", f"{what}: over the limit of {g.max_ms:g} ms", figures
                         ), series
        if c.label == "High":
            ci = c.ci or (math.nan, math.nan)
            return _Gate(name, "fail", f"{what}: higher by {c.estimate:.3g} ms per interval "
                         f"[{ci[0]:.3g}, {ci[1]:.3g}] (mean ratio {c.mean_ratio or math.nan:.3g}"
                         f" > {g.max_ratio:g})", figures), series
        return _Gate(name, "pass", f"{what}: no significant rise", figures), series

    def _metric_gate(self, g: MetricGuard, settings: CanarySettings,
                     base: Mapping[str, Any], cand: Mapping[str, Any]) -> _Gate:
        from champion.analysis.proportions import two_proportion_ztest
        from champion.analysis.summary import MeanStats, ProportionStats
        from champion.analysis.ttest import welch_test

        name = f"metric:{g.metric}"
        n_b, n_c = base["requests"], cand["requests"]
        mb = base["metrics"].get(g.metric) or {"sum": 0.0, "sum_sq": 0.0, "binary": True}
        mc = cand["metrics"].get(g.metric) or {"sum": 0.0, "sum_sq": 0.0, "binary": True}
        figures: dict[str, Any] = {"metric": g.metric, "bad": g.bad,
                                   "control_mean": mb["sum"] / n_b if n_b else None,
                                   "candidate_mean": mc["sum"] / n_c if n_c else None}
        if n_b < settings.min_requests or n_c < settings.min_requests:
            return _Gate(name, "insufficient", f"{g.metric}: waiting for "
                         f"{settings.min_requests} requests per arm", figures)
        binary = mb.get("binary", True) and mc.get("binary", True)
        if binary:
            comp = two_proportion_ztest(ProportionStats(n_b, round(mb["sum"])),
                                        ProportionStats(n_c, round(mc["sum"])),
                                        alpha=2 * g.alpha)
        else:
            comp = welch_test(MeanStats(n_b, mb["sum"], mb["sum_sq"]).moments(),
                              MeanStats(n_c, mc["sum"], mc["sum_sq"]).moments(),
                              alpha=2 * g.alpha)
        effect = comp.absolute
        harmful = effect.estimate < 0 if g.bad == "decrease" else effect.estimate > 0
        p_one = effect.p_value / 2 if harmful else 1 - effect.p_value / 2
        figures.update(difference=effect.estimate, ci_low=effect.ci_low,
                       ci_high=effect.ci_high, p_value=p_one)
        what = (f"{g.metric}: {figures['candidate_mean']:.4g} against "
                f"{figures['control_mean']:.4g} for the control")
        if effect.error is None and harmful and p_one < g.alpha:
            figures["label"] = "Low" if g.bad == "decrease" else "High"
            return _Gate(name, "fail", f"{what}: significantly "
                         f"{'lower' if g.bad == 'decrease' else 'higher'} (one-sided p = "
                         f"{p_one:.3g} < {g.alpha:g})", figures)
        figures["label"] = "Pass"
        return _Gate(name, "pass", f"{what}: no significant harm (p = {p_one:.3g})", figures)

    def _next(self, settings: CanarySettings, state: State, exp: Experiment,
              gates: Sequence[_Gate], cand: Mapping[str, Any], entered: float, now: float
              ) -> tuple[str, dict[str, Any]]:
        started = exp.started_at or entered
        if exp.status in ("stopped", "paused", "draft"):
            last = (state.get("history") or [{}])[-1].get("outcome")
            done = {"rollback": "rolled_back", "promote": "promoted"}.get(
                last or "", exp.status) if exp.status == "stopped" else exp.status
            return done, {"action": "none", "reason": f"the experiment is {exp.status}"
                          + (f" ({done.replace('_', ' ')})" if done != exp.status else "")}
        failed = [g for g in gates if g.verdict == "fail"]
        if failed:
            return "breach", {"action": "rollback",
                              "reason": f"guardrail {failed[0].name} breached: "
                                        f"{failed[0].message}"}
        if state.get("phase") == "holding":
            return "holding", {"action": "hold", "reason": "every step passed; held at 100 % "
                               "until a person promotes or rolls back"}
        if now >= started + settings.max_seconds:
            return "deadline", {"action": "rollback",
                                "reason": f"deadline: still undecided after "
                                          f"{settings.max_seconds:g} s (step "
                                          f"{state['step'] + 1} of {len(settings.steps)})"}
        short = [g for g in gates if g.verdict == "insufficient"]
        if cand["requests"] < settings.min_requests or short:
            why = short[0].message if short else (
                f"{cand['requests']} of {settings.min_requests} candidate requests")
            return "insufficient_data", {"action": "hold",
                                         "reason": f"too little data to judge: {why}"}
        held = [g for g in gates if g.verdict == "hold"]
        if held:
            return "inconclusive", {"action": "hold", "reason": held[0].message}
        bake_end = entered + settings.step_seconds
        if now < bake_end:
            return "baking", {"action": "wait", "until": bake_end,
                              "reason": f"baking: {now - entered:.0f} s of "
                                        f"{settings.step_seconds:g} s at {state['percent']:g} %"}
        last = state["step"] >= len(settings.steps) - 1
        if not last:
            to = settings.steps[state["step"] + 1]
            return "passed", {"action": "advance", "to_percent": to,
                              "reason": f"step {state['step'] + 1} passed every guardrail; "
                                        f"to {to:g} %"}
        if settings.on_success == "hold":
            return "passed", {"action": "hold_final", "reason": "every step passed; holding "
                              "at 100 % (on_success: hold)"}
        return "passed", {"action": "promote", "reason": f"every step passed; promoting "
                          f"{exp.candidates[0]} ({exp.labels[exp.candidates[0]]})"}

    # ------------------------------------------------------------ step

    def step(self, settings: CanarySettings, state: State, exp: Experiment,
             report: Mapping[str, Any], now: float) -> Step | None:
        nxt = report.get("next") or {}
        action = nxt.get("action")
        reason = str(nxt.get("reason", ""))
        breaches = self._breaches(report)
        if action in ("rollback", "advance", "promote", "hold_final"):
            entry = {"step": state["step"], "percent": state["percent"],
                     "entered_at": report["step"]["entered_at"], "left_at": now,
                     "requests": report["step"]["requests"],
                     "errors": report["step"]["errors"],
                     "guardrails": [{k: g[k] for k in ("name", "verdict", "message")}
                                    for g in report.get("guardrails", [])],
                     "outcome": action}
            history = [*state.get("history", []), entry]
            timeline = [*state.get("timeline", [])]
            if not timeline:
                timeline.append([report["step"]["entered_at"], state["percent"]])
            new: State = {**state, "history": history, "timeline": timeline,
                          "slo_breaches": 0}
            if action == "rollback":
                timeline.append([now, 0.0])
                return Step(state=new, action="stop", decision={"action": "rollback"},
                            reason=reason)
            if action == "promote":
                return Step(state=new, action="stop",
                            decision={"promote": exp.candidates[0]}, reason=reason)
            if action == "hold_final":
                return Step(state={**new, "phase": "holding"}, reason=reason, event="hold")
            to = float(nxt["to_percent"])
            policy = ABPolicy.from_config({
                "variants": list(exp.variants), "weights": self._weights(state["percent"]),
                "salt": exp.salt, "owner_runs": state.get("owner_runs")})
            moved = policy.reweighted(self._weights(to))
            timeline.append([now, to])
            return Step(state={**new, "step": state["step"] + 1, "percent": to,
                               "entered_at": now,
                               "owner_runs": moved.to_config()["owner_runs"]},
                        reason=reason, event="advance")
        if breaches != int(state.get("slo_breaches", 0)):
            return Step(state={**state, "slo_breaches": breaches})
        return None

    @staticmethod
    def _breaches(report: Mapping[str, Any]) -> int:
        for g in report.get("guardrails", []):
            if g["name"] == "error_rate" and g["figures"].get("decision") == "slo":
                return int(g["figures"].get("consecutive", 0))
        return 0

    def snapshot(self, report: Mapping[str, Any]) -> dict[str, Any] | None:
        step = report.get("step") or {}
        return {"share": step.get("share"), "target": (step.get("percent") or 0) / 100,
                "step": step.get("index"), "status": report.get("status"),
                "requests": step.get("requests")}


# --------------------------------------------------------------------------- helpers


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.quantile(np.asarray(values, dtype=float), q, method="linear"))


def _latency_summary(arm: Mapping[str, Any], start: float, width: float, q: float,
                     min_samples: int) -> tuple[dict[int, float], float | None]:
    """An arm's ``q`` quantile per interval and over the window: as the store's window
    summarised it (``latency``), or from raw ``latencies`` [(ts, ms), ...]."""
    summary = arm.get("latency")
    if summary is not None:
        return {int(i): float(v) for i, v in summary["intervals"].items()}, summary["overall"]
    samples = arm.get("latencies") or []
    return (_interval_quantiles(samples, start, width, q, min_samples),
            _quantile([ms for _, ms in samples], q))


def _interval_quantiles(samples: Sequence[Sequence[float]], start: float, width: float,
                        q: float, min_samples: int) -> dict[int, float]:
    """Per interval index from ``start``: the ``q`` quantile of the latencies in it."""
    buckets: dict[int, list[float]] = {}
    for ts, ms in samples:
        buckets.setdefault(int((ts - start) // width), []).append(ms)
    return {i: float(np.quantile(v, q, method="linear")) for i, v in buckets.items()
            if len(v) >= min_samples and i >= 0}


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g} ms"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _view(body: Mapping[str, Any], exp: Experiment) -> dict[str, Any]:
    step = body["step"]
    alerts = []
    if body["status"] in ("breach", "deadline"):
        alerts.append(alert("rollback", "error", "Rolling back", body["next"]["reason"]))
    elif body["status"] == "insufficient_data":
        alerts.append(alert("no_data", "warning", "Too little data", body["next"]["reason"]))
    rows = [{"guardrail": g["name"], "verdict": g["verdict"], "detail": g["message"]}
            for g in body["guardrails"]]
    history = [{"step": int(h.get("step", 0)) + 1, "percent": h.get("percent"),
                "entered": h.get("entered_at"), "left": h.get("left_at"),
                "candidate": (h.get("requests") or {}).get(exp.candidates[0]),
                "control": (h.get("requests") or {}).get(exp.control),
                "outcome": h.get("outcome")}
               for h in body["history"]]
    history.append({"step": step["index"] + 1, "percent": step["percent"],
                    "entered": step["entered_at"], "left": None,
                    "candidate": step["requests"].get(exp.candidates[0]),
                    "control": step["requests"].get(exp.control), "outcome": body["status"]})
    timeline = body["timeline"]
    lat = body.get("latency_series") or {}
    headline = (f"step {step['index'] + 1} of {step['count']} at {step['percent']:g} %: "
                f"{body['status']}; next: {body['next']['action']}: {body['next']['reason']}")
    return view(headline, alerts=alerts, tables=[
        table("guardrails", "Guardrails (this step, against the concurrent control)", [
            column("guardrail", "guardrail"), column("verdict", "verdict"),
            column("detail", "figures")], rows),
        table("steps", "Steps", [
            column("step", "step", "int"), column("percent", "candidate %", "num"),
            column("entered", "entered", "time"), column("left", "left", "time"),
            column("candidate", "candidate requests", "int"),
            column("control", "control requests", "int"), column("outcome", "outcome")],
            history),
    ], charts=[
        chart("steps", "Candidate share: step target and measured", "step", [
            {"label": "target %", "x": [t["ts"] for t in timeline],
             "y": [t["percent"] for t in timeline]}]),
        chart("share", "Measured candidate share over time", "line", [
            {"label": "candidate share", "path": "share"},
            {"label": "target", "path": "target", "dashed": True}], source="timeline",
            y_format="pct"),
        chart("latency", "Latency per interval (this step)", "line", [
            {"label": exp.control, **lat.get("control", {"x": [], "y": []})},
            {"label": exp.candidates[0], **lat.get("candidate", {"x": [], "y": []})}],
            y_format="ms"),
    ])


register(Canary())
