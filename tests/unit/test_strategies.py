"""Strategies as pure objects: settings, routing policies, reports and steps, no server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from champion.routing import RoutingRequest
from champion.routing.ab import owner_counts
from champion.strategies import STRATEGIES, Experiment, SettingsError, get
from champion.strategies.settings import from_text, parse, schema

RNG = np.random.default_rng(0)


def exp(strategy: str = "canary", **kw: Any) -> Experiment:
    base: dict[str, Any] = dict(
        id="exp_1", endpoint="churn", strategy=strategy, variants=("stable", "canary"),
        labels={"stable": "churn:1", "canary": "churn:2"}, control="stable", salt="s",
        status="running", created_at=1000.0, started_at=1000.0)
    base.update(kw)
    return Experiment(**base)


def window(n_control: int, n_canary: int, *, errors: tuple[int, int] = (0, 0),
           latency: tuple[float, float] = (2.0, 2.0), start: float = 1000.0,
           span: float = 10.0) -> dict[str, Any]:
    def arm(n: int, e: int, ms: float) -> dict[str, Any]:
        ts = np.linspace(start, start + span, n, endpoint=False)
        jitter = RNG.normal(0, 0.1, n)
        return {"requests": n, "errors": e, "metrics": {},
                "latencies": [(float(t), float(ms + j)) for t, j in zip(ts, jitter, strict=True)]}
    return {"window": {"stable": arm(n_control, errors[0], latency[0]),
                       "canary": arm(n_canary, errors[1], latency[1])}}


def canary(**raw: Any) -> tuple[Any, Any, dict[str, Any], Experiment]:
    strategy = get("canary")
    e = exp()
    # A margin of 5 points: 0 errors in 150 requests proves non-inferiority (the default
    # margin of 0.05 points needs about 5.4 / 0.0005 = 11,000 requests).
    settings = strategy.settings({"steps": [10, 50, 100], "step_seconds": 5,
                                  "min_requests": 100, "interval_seconds": 1,
                                  "guardrails": {"error_rate": {"margin": 0.05}}, **raw}, e)
    return strategy, settings, strategy.initial_state(settings, e), e


def test_every_builtin_strategy_is_registered_with_a_schema() -> None:
    assert {"ab", "canary", "shadow"} <= set(STRATEGIES)
    for strategy in STRATEGIES.values():
        assert strategy.summary
        for entry in strategy.schema():
            assert entry["help"], (strategy.name, entry["name"])


def test_settings_errors_name_the_field() -> None:
    strategy = get("canary")
    with pytest.raises(SettingsError, match=r"canary\.steps\[1\]: must be a number"):
        strategy.settings({"steps": [5, "x"]}, exp())
    with pytest.raises(SettingsError, match=r"canary\.steps: must increase"):
        strategy.settings({"steps": [50, 5]}, exp())
    with pytest.raises(SettingsError, match="first step must be below 100"):
        strategy.settings({"steps": [100]}, exp())
    with pytest.raises(SettingsError, match=r"canary\.bake: unknown setting"):
        strategy.settings({"bake": 3}, exp())
    with pytest.raises(SettingsError, match=r"guardrails\.error_rate\.max_rate: must be at most"):
        strategy.settings({"guardrails": {"error_rate": {"max_rate": 2}}}, exp())
    with pytest.raises(SettingsError, match="cannot be promoted"):
        strategy.settings({}, exp(labels={"stable": "churn:1", "canary": "other:3"}))
    with pytest.raises(SettingsError, match="unknown strategy"):
        get("roulette")


def test_settings_round_trip_and_command_line_text() -> None:
    strategy = get("canary")
    settings = strategy.settings({"steps": [1, 50, 100], "guardrails": {"latency": False}},
                                 exp())
    again = strategy.settings(strategy.dump(settings), exp())
    assert again == settings and settings.guardrails.latency is None
    steps = next(e for e in schema(strategy.settings_type) if e["name"] == "steps")
    assert from_text(steps, "5,25,50,100") == [5.0, 25.0, 50.0, 100.0]
    assert parse(strategy.settings_type, None) == strategy.settings_type()


def test_canary_routes_its_step_share_sticky_by_unit() -> None:
    strategy, settings, state, e = canary()
    policy = strategy.policy(settings, state, e)
    got = [policy.decide(RoutingRequest(f"r{i}", f"u{i}"), RNG).variant for i in range(10_000)]
    assert abs(got.count("canary") / 10_000 - 0.10) < 0.015
    assert policy.decide(RoutingRequest("x", "u1"), RNG).variant == got[1]


def test_canary_holds_on_too_little_data_and_never_advances() -> None:
    strategy, settings, state, e = canary()
    report = strategy.report(settings, state, e, window(900, 40), 2000.0, RNG)
    assert report["status"] == "insufficient_data" and report["next"]["action"] == "hold"
    assert "too little data" in report["next"]["reason"]
    assert strategy.step(settings, state, e, report, 2000.0) is None


def test_canary_bakes_then_advances_moving_only_the_units_it_must() -> None:
    strategy, settings, state, e = canary()
    report = strategy.report(settings, state, e, window(900, 150), 1003.0, RNG)
    assert report["status"] == "baking" and report["next"]["action"] == "wait"
    report = strategy.report(settings, state, e, window(900, 150), 1010.0, RNG)
    assert report["status"] == "passed", report["guardrails"]
    step = strategy.step(settings, state, e, report, 1010.0)
    assert step is not None and step.event == "advance" and step.action is None
    new = step.state
    assert new["step"] == 1 and new["percent"] == 50 and new["entered_at"] == 1010.0
    assert new["history"][0]["outcome"] == "advance"
    old = strategy.policy(settings, state, e)
    moved = strategy.policy(settings, new, e)
    assert owner_counts(moved.owners, 2) == (5000, 5000)  # type: ignore[attr-defined]
    changed = [b for b in range(10_000) if old.owners[b] != moved.owners[b]]  # type: ignore[attr-defined]
    assert len(changed) == 4000 and all(old.owners[b] == 0 for b in changed)  # type: ignore[attr-defined]


def test_canary_rolls_back_when_its_error_rate_breaches() -> None:
    strategy, settings, state, e = canary()
    report = strategy.report(settings, state, e, window(2000, 200, errors=(0, 16)), 1002.0, RNG)
    # 8 % > the 1 % limit: the first check holds, the second in a row rolls back
    assert report["next"]["action"] == "hold" and "1 of 2" in report["next"]["reason"]
    step = strategy.step(settings, state, e, report, 1002.0)
    assert step is not None and step.state is not None and step.state["slo_breaches"] == 1
    report = strategy.report(settings, step.state, e, window(2000, 220, errors=(0, 18)),
                             1003.0, RNG)
    assert report["status"] == "breach"
    step = strategy.step(settings, step.state, e, report, 1003.0)
    assert step is not None and step.action == "stop"
    assert step.decision == {"action": "rollback"}
    assert "error_rate" in step.reason and "8." in step.reason


def test_canary_rolls_back_at_once_when_the_error_interval_clears_the_margin() -> None:
    strategy, settings, state, e = canary(guardrails={"error_rate": {"max_rate": 0.5}})
    report = strategy.report(settings, state, e, window(20000, 2000, errors=(2, 60)),
                             1002.0, RNG)
    assert report["status"] == "breach" and "above the margin" in report["next"]["reason"]


def test_canary_rolls_back_on_added_latency() -> None:
    strategy, settings, state, e = canary()
    report = strategy.report(settings, state, e, window(1000, 200, latency=(2.0, 52.0)),
                             1011.0, RNG)
    assert report["status"] == "breach", report["guardrails"]
    assert report["next"]["reason"].startswith("guardrail latency_p99 breached")


def test_canary_promotes_after_the_last_step_or_holds_when_asked() -> None:
    strategy, settings, state, e = canary(steps=[50, 100])
    at_100 = {**state, "step": 1, "percent": 100.0, "entered_at": 1010.0,
              "history": [{"entered_at": 1000.0}]}
    assert strategy.needs(settings, at_100, e, 1020.0)["baseline"] == {
        "since": 1000.0, "until": 1010.0, "metrics": [],
        "latency": {"width": 1.0, "q": 0.99, "min_samples": 5}}
    stats = {**window(0, 200, start=1010.0), "baseline": window(200, 0)["window"]}
    report = strategy.report(settings, at_100, e, stats, 1020.0, RNG)
    assert report["step"]["baseline"] == "previous step"
    step = strategy.step(settings, at_100, e, report, 1020.0)
    assert step is not None and step.decision == {"promote": "canary"}
    strategy, settings, state, e = canary(steps=[50, 100], on_success="hold")
    at_100 = {**at_100, "owner_runs": state["owner_runs"]}
    report = strategy.report(settings, at_100, e, stats, 1020.0, RNG)
    step = strategy.step(settings, at_100, e, report, 1020.0)
    assert step is not None and step.action is None and step.state["phase"] == "holding"
    held = strategy.report(settings, step.state, e, stats, 1030.0, RNG)
    assert held["status"] == "holding" and held["next"]["action"] == "hold"


def test_canary_deadline_turns_a_hold_into_a_rollback() -> None:
    strategy, settings, state, e = canary(max_seconds=30)
    report = strategy.report(settings, state, e, window(10, 0), 1031.0, RNG)
    assert report["status"] == "deadline" and report["next"]["action"] == "rollback"


def test_canary_feedback_metric_guardrail() -> None:
    strategy, settings, state, e = canary(guardrails={"metrics": [{"metric": "reward"}]})
    stats = window(2000, 2000)
    stats["window"]["stable"]["metrics"]["reward"] = {"sum": 400.0, "sum_sq": 400.0,
                                                     "binary": True}
    stats["window"]["canary"]["metrics"]["reward"] = {"sum": 250.0, "sum_sq": 250.0,
                                                     "binary": True}
    report = strategy.report(settings, state, e, stats, 1011.0, RNG)
    assert report["status"] == "breach" and "metric:reward" in report["next"]["reason"]


def test_ab_step_promotes_only_with_auto_and_a_winner() -> None:
    strategy = get("ab")
    e = exp("ab", auto={"enabled": True, "min_units": 10}, metrics={"primary": "reward"})
    settings = strategy.settings({}, e)
    state = strategy.initial_state(settings, e)
    report = {"decision": {"winner": "canary"}, "arms": [{"units": 20}]}
    step = strategy.step(settings, state, e, report, 0.0)
    assert step is not None and step.decision == {"promote": "canary"}
    assert strategy.step(settings, state, exp("ab"), report, 0.0) is None


def test_ab_reweight_moves_minimally_and_restarts_the_srm_phase() -> None:
    strategy = get("ab")
    e = exp("ab")
    settings = strategy.settings({"weights": {"stable": 90, "canary": 10}}, e)
    state = strategy.initial_state(settings, e)
    new = strategy.reweight(settings, state, e, {"stable": 80, "canary": 20}, 50.0)
    assert new["reweighted_at"] == 50.0 and new["weights"] == [0.8, 0.2]
    with pytest.raises(SettingsError, match="one weight per variant"):
        strategy.reweight(settings, state, e, {"stable": 1}, 50.0)
    with pytest.raises(SettingsError, match="no weights"):
        get("shadow").reweight(get("shadow").settings({}, e), {}, e, {}, 0.0)
