"""The bandit strategy as pure hooks: settings, routing, report, steps, decisions, arms
added and removed, no server."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np
import pytest

from champion.routing import RoutingRequest
from champion.routing.allocation import unpack_owners
from champion.strategies import Experiment, SettingsError, Step, get

BANDIT = get("bandit")
RNG = np.random.default_rng(0)
NOW = 10_000.0


def exp(variants: tuple[str, ...] = ("a", "b", "c"), **kw: Any) -> Experiment:
    base: dict[str, Any] = dict(
        id="exp_1a2b3c4d", endpoint="churn", strategy="bandit", variants=variants,
        labels={v: f"churn:{i + 1}" for i, v in enumerate(variants)}, control=variants[0],
        salt="s", status="running", created_at=0.0, started_at=0.0)
    base.update(kw)
    return Experiment(**base)


def settings(e: Experiment | None = None, **raw: Any) -> Any:
    return BANDIT.settings({"min_units_per_arm": 50, **raw}, e or exp())


def stats(rewards: dict[str, tuple[int, float]], *, pulls: dict[str, int] | None = None,
          late: dict[str, int] | None = None, values: tuple[float, float] = (0.0, 1.0),
          recent: int = 30, newest: list[list[Any]] | None = None) -> dict[str, Any]:
    arms = {}
    for v, (n, s) in rewards.items():
        arms[v] = {"n": n, "sum": s, "sum_sq": s if values == (0.0, 1.0) else s * s / max(n, 1),
                   "min": values[0] if n else None, "max": values[1] if n else None,
                   "non_binary": 0 if values == (0.0, 1.0) else n,
                   "late": (late or {}).get(v, 0), "n_before": 0, "sum_before": 0.0}
    logged = {v: {"requests": (pulls or {}).get(v, n), "errors": 0,
                  "answered": (pulls or {}).get(v, n), "answered_before": 0,
                  "recent": recent // len(rewards)}
              for v, (n, _) in rewards.items()}
    periods = [[0, v, n, s, s] for v, (n, s) in rewards.items() if n]
    return {"rewards": {"arms": arms, "periods": periods, "newest": newest or []},
            "pulls": logged}


CLEAR = {"a": (200, 60.0), "b": (200, 80.0), "c": (400, 220.0)}


def report(st: Any, state: dict[str, Any], e: Experiment, s: dict[str, Any],
           now: float = NOW) -> dict[str, Any]:
    return BANDIT.report(st, state, e, s, now, RNG)


# --------------------------------------------------------------------------- settings


def test_settings_have_defaults_and_name_the_bad_field() -> None:
    st = BANDIT.settings({}, exp())
    assert (st.algorithm, st.reward, st.update_seconds, st.min_share) == (
        "thompson", "reward", 10.0, 0.01)
    assert BANDIT.dump(st)["decide_threshold"] == 0.95
    with pytest.raises(SettingsError, match=r"bandit\.algorithm: must be one of"):
        BANDIT.settings({"algorithm": "softmax"}, exp())
    with pytest.raises(SettingsError, match=r"bandit\.update_seconds: must be at least 1"):
        BANDIT.settings({"update_seconds": 0.2}, exp())
    with pytest.raises(SettingsError, match=r"bandit\.min_share"):
        BANDIT.settings({"min_share": 0.4}, exp())
    with pytest.raises(SettingsError, match=r"bandit\.reward_high"):
        BANDIT.settings({"reward_low": 1.0, "reward_high": 1.0}, exp())
    foreign = exp(labels={"a": "churn:1", "b": "other:2", "c": "churn:3"})
    with pytest.raises(SettingsError, match="could not be promoted"):
        BANDIT.settings({}, foreign)
    assert BANDIT.settings({"on_decision": "stop"}, foreign).on_decision == "stop"
    assert {e["name"] for e in BANDIT.schema() if e["cli"]} >= {
        "algorithm", "reward", "min_share", "update_seconds", "min_units_per_arm"}


# --------------------------------------------------------------------------- routing


def test_it_starts_uniform_and_routes_by_its_shares() -> None:
    e = exp()
    st = settings()
    state = BANDIT.initial_state(st, e)
    assert state["shares"] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    policy = BANDIT.policy(st, {**state, "shares": {"a": 0.1, "b": 0.2, "c": 0.7}}, e)
    rng = random.Random(1)
    counts = Counter(policy.decide(RoutingRequest("k"), rng).variant for _ in range(10_000))
    assert counts["c"] / 10_000 == pytest.approx(0.7, abs=0.03)
    sticky = BANDIT.policy(st, state, e)
    unit = [sticky.decide(RoutingRequest(str(i), "user-7"), rng).variant for i in range(20)]
    assert len(set(unit)) == 1
    loose = BANDIT.settings({"sticky": False}, e)
    assert BANDIT.initial_state(loose, e)["owners"] is None
    assert BANDIT.describe(st, state, e)["weights"] == pytest.approx(state["shares"])


# --------------------------------------------------------------------------- report and step


def test_uniform_until_every_arm_has_its_minimum() -> None:
    e, st = exp(), settings()
    state = BANDIT.initial_state(st, e)
    body = report(st, state, e, stats({"a": (49, 10.0), "b": (70, 30.0), "c": (80, 70.0)}))
    assert body["phase"] == "uniform"
    assert [a["next_share"] for a in body["arms"]] == pytest.approx([1 / 3] * 3)
    assert "uniform until every arm has 50 rewards" in body["view"]["headline"]


def test_the_report_has_what_people_ask_for() -> None:
    e, st = exp(), settings()
    state = BANDIT.initial_state(st, e)
    body = report(st, state, e, stats(CLEAR, pulls={"a": 210, "b": 205, "c": 400},
                                      late={"b": 3}))
    arms = {a["name"]: a for a in body["arms"]}
    assert body["phase"] == "adaptive" and body["leader"] == "c"
    assert sum(a["next_share"] for a in arms.values()) == pytest.approx(1.0)
    assert sum(a["prob_best"] for a in arms.values()) == pytest.approx(1.0)
    assert arms["c"]["next_share"] > 0.9 and arms["a"]["next_share"] >= 0.01
    assert arms["a"]["pending"] == 10 and arms["b"]["late"] == 3
    assert arms["c"]["mean"]["estimate"] == pytest.approx(0.55)
    assert arms["c"]["mean"]["low"] < 0.55 < arms["c"]["mean"]["high"]
    assert arms["c"]["weighted_mean"]["estimate"] == pytest.approx(0.55)
    assert body["totals"]["cumulative_reward"] == pytest.approx(360.0)
    regret = body["regret"]["estimate"]
    assert regret == pytest.approx(sum(a["regret"] for a in arms.values()))
    assert regret == pytest.approx(210 * (arms["c"]["posterior"]["estimate"]
                                          - arms["a"]["posterior"]["estimate"])
                                   + 205 * (arms["c"]["posterior"]["estimate"]
                                            - arms["b"]["posterior"]["estimate"]))
    view = body["view"]
    assert {t["id"] for t in view["tables"]} == {"arms", "summary"}
    charts = {c["id"]: c for c in view["charts"]}
    assert {"allocation", "pbest", "means"} <= set(charts)
    assert charts["allocation"]["source"] == "timeline"
    assert charts["allocation"]["series"][0]["path"] == "share.a"
    assert {a["id"] for a in view["alerts"]} >= {"late", "bias"}
    assert view["headline"].startswith("thompson on reward: best so far c")


def test_a_step_writes_the_new_allocation_and_a_timeline_point() -> None:
    e, st = exp(), settings(decide_threshold=None)
    state = BANDIT.initial_state(st, e)
    body = report(st, state, e, stats(CLEAR))
    step = BANDIT.step(st, state, e, body, NOW)
    assert isinstance(step, Step) and step.action is None and step.state is not None
    assert step.state["shares"] == pytest.approx({a["name"]: a["next_share"]
                                                  for a in body["arms"]})
    assert step.state["updates"] == 1 and step.state["updated_at"] == NOW
    assert step.state["observed"] == {"a": 200, "b": 200, "c": 400}
    owners = unpack_owners(step.state["owners"])
    assert owners.count(2) == pytest.approx(step.state["shares"]["c"] * 10_000, abs=1)
    point = step.point or {}
    assert point["share"] == pytest.approx(step.state["shares"])
    assert set(point["pbest"]) == set(point["n"]) == set(point["mean"]) == {"a", "b", "c"}
    assert point["update"] == 1 and BANDIT.snapshot(body) is None
    # nothing new since: no write, no point (an idle experiment does not churn its state)
    again = report(st, step.state, e, stats(CLEAR), NOW + 10)
    assert BANDIT.step(st, step.state, e, again, NOW + 10) is None
    more = report(st, step.state, e, stats({**CLEAR, "a": (201, 60.0)}), NOW + 20)
    assert BANDIT.step(st, step.state, e, more, NOW + 20) is not None
    assert BANDIT.cadence(st, e) == 10.0
    paused = exp(status="paused")
    assert BANDIT.step(st, state, paused, report(st, state, paused, stats(CLEAR)), NOW) is None


@pytest.mark.parametrize("algorithm", ["thompson", "ucb1", "epsilon_greedy",
                                       "sliding_window", "discounted", "discounted_ucb"])
def test_every_algorithm_moves_traffic_to_the_clear_winner(algorithm: str) -> None:
    e, st = exp(), settings(algorithm=algorithm)
    rng = np.random.default_rng(1)
    p = {"a": 0.3, "b": 0.4, "c": 0.55}
    newest = [[v, float(rng.random() < p[v])] for v in ["a", "b", "c", "c"] * 300]
    s = stats(CLEAR, newest=newest, recent=300)
    body = report(st, BANDIT.initial_state(st, e), e, s)
    arms = {a["name"]: a for a in body["arms"]}
    assert arms["c"]["next_share"] == max(a["next_share"] for a in arms.values()), arms
    assert sum(a["next_share"] for a in arms.values()) == pytest.approx(1.0)


def test_identical_arms_get_identical_shares_and_one_arm_gets_everything() -> None:
    e, st = exp(), settings()
    same = report(st, BANDIT.initial_state(st, e), e,
                  stats({"a": (300, 150.0), "b": (300, 150.0), "c": (300, 150.0)}))
    assert [a["next_share"] for a in same["arms"]] == pytest.approx([1 / 3] * 3)
    # near-identical ones: plain Thompson picks a favourite, an indifference does not
    close = stats({"a": (3000, 1500.0), "b": (3000, 1530.0), "c": (3000, 1485.0)})
    plain = report(st, BANDIT.initial_state(st, e), e, close)
    assert max(a["next_share"] for a in plain["arms"]) > 0.6
    calm = settings(indifference=0.05)
    even = report(calm, BANDIT.initial_state(calm, e), e, close)
    assert [a["next_share"] for a in even["arms"]] == pytest.approx([1 / 3] * 3, abs=0.01)
    assert "within 0.05 of the best" in even["reason"]
    one = exp(("only",))
    st1 = BANDIT.settings({}, one)
    body = report(st1, BANDIT.initial_state(st1, one), one, stats({"only": (10, 5.0)}))
    assert body["arms"][0]["next_share"] == 1.0 and body["phase"] == "single"
    assert "one arm" in body["decision"]["reason"]


def test_real_valued_rewards_and_missing_ones() -> None:
    e, st = exp(), settings(decide_threshold=None)
    s = stats({"a": (100, 1000.0), "b": (100, 1100.0), "c": (100, 1500.0)},
              values=(-5.0, 40.0))
    body = report(st, BANDIT.initial_state(st, e), e, s)
    assert body["model"] == "gaussian" and body["leader"] == "c"
    ucb = BANDIT.settings({"algorithm": "ucb1", "min_units_per_arm": 50}, e)
    frozen = report(ucb, BANDIT.initial_state(ucb, e), e, s)
    assert frozen["error"] == "REWARD_OUT_OF_RANGE" and frozen["phase"] == "frozen"
    assert any(a["id"] == "rewards" for a in frozen["view"]["alerts"])
    ranged = BANDIT.settings({"algorithm": "ucb1", "reward_low": -5, "reward_high": 40,
                              "min_units_per_arm": 50}, e)
    assert report(ranged, BANDIT.initial_state(ranged, e), e, s)["error"] is None
    # requests served before the attribution window without a reward: out, or imputed
    late = stats({"a": (60, 30.0), "b": (60, 30.0), "c": (60, 30.0)})
    for v in "abc":
        late["pulls"][v].update(requests=100, answered=100, answered_before=40)
    dropped = report(st, BANDIT.initial_state(st, e), e, late)
    assert [a["rewards"] for a in dropped["arms"]] == [60] * 3
    assert [a["expired"] for a in dropped["arms"]] == [40] * 3
    imputed = BANDIT.settings({"missing_reward": 0, "min_units_per_arm": 50}, e)
    zero = report(imputed, BANDIT.initial_state(imputed, e), e, late)
    assert [a["rewards"] for a in zero["arms"]] == [100] * 3
    assert zero["arms"][0]["mean"]["estimate"] == pytest.approx(0.3)


def test_rewards_the_log_lacks_are_credited_and_flagged() -> None:
    e, st = exp(), settings()
    body = report(st, BANDIT.initial_state(st, e), e,
                  stats(CLEAR, pulls={"a": 150, "b": 200, "c": 400}))
    assert body["totals"]["unlogged"] == 50
    assert body["arms"][0]["pulls"] == 200 and body["arms"][0]["rewards"] == 200
    assert any(a["id"] == "unlogged" for a in body["view"]["alerts"])


# --------------------------------------------------------------------------- decisions


def test_it_promotes_the_leader_once_p_best_has_stayed_above_the_threshold() -> None:
    e, st = exp(), settings(decide_after_seconds=60, decide_min_rewards=40)
    state = BANDIT.initial_state(st, e)
    first = report(st, state, e, stats(CLEAR), NOW)
    assert first["decision"]["prob_best"] > 0.95 and not first["decision"]["ready"]
    step = BANDIT.step(st, state, e, first, NOW)
    assert step is not None and step.action is None and step.state is not None
    assert step.state["above_since"] == NOW and step.state["leader"] == "c"
    later = report(st, step.state, e, stats(CLEAR), NOW + 61)
    assert later["decision"]["ready"] and later["next"]["action"] == "promote"
    done = BANDIT.step(st, step.state, e, later, NOW + 61)
    assert done is not None and done.action == "stop" and done.decision == {"promote": "c"}
    assert "P(best) of c" in done.reason and done.point is not None
    assert BANDIT.promotable(st, step.state, e, None) == "c"
    # a dip below the threshold starts the clock again
    dip = report(st, step.state, e, stats({"a": (200, 60.0), "b": (200, 100.0),
                                           "c": (200, 104.0)}), NOW + 30)
    again = BANDIT.step(st, step.state, e, dip, NOW + 30)
    assert again is not None and again.state is not None
    assert again.state["above_since"] is None and again.action is None


def test_no_decision_without_enough_rewards_or_when_turned_off() -> None:
    e = exp()
    few = settings(decide_min_rewards=300, decide_after_seconds=0)
    body = report(few, BANDIT.initial_state(few, e), e, stats(CLEAR))
    assert "waiting for 300 rewards per arm" in body["decision"]["reason"]
    off = settings(decide_threshold=None)
    body = report(off, BANDIT.initial_state(off, e), e, stats(CLEAR))
    assert body["next"]["action"] == "update" and "promote by hand" in body["decision"]["reason"]
    stop = settings(decide_after_seconds=0, on_decision="stop")
    body = report(stop, BANDIT.initial_state(stop, e), e, stats(CLEAR))
    step = BANDIT.step(stop, BANDIT.initial_state(stop, e), e, body, NOW)
    assert step is not None and step.decision == {"action": "keep"}


# --------------------------------------------------------------------------- arms change


def test_arms_are_added_with_an_equal_share_and_removed_to_none() -> None:
    e, st = exp(("a", "b")), settings(exp(("a", "b")))
    state = {**BANDIT.initial_state(st, e), "shares": {"a": 0.2, "b": 0.8}}
    grown_exp = exp(("a", "b", "c"))
    grown = BANDIT.revise(st, state, e, st, grown_exp, (), NOW)
    assert grown["shares"] == pytest.approx({"a": 0.2 * 2 / 3, "b": 0.8 * 2 / 3, "c": 1 / 3})
    assert grown["added_at"] == {"c": NOW}
    assert unpack_owners(grown["owners"]).count(2) == pytest.approx(3333, abs=1)
    policy = BANDIT.policy(st, grown, grown_exp)
    assert policy.variants == ("a", "b", "c")
    shrunk = BANDIT.revise(st, grown, grown_exp, st, grown_exp, ("a",), NOW + 1)
    assert shrunk["shares"]["a"] == 0 and shrunk["removed"] == ["a"]
    assert sum(shrunk["shares"].values()) == pytest.approx(1.0)
    assert 0 not in unpack_owners(shrunk["owners"])
    body = report(st, shrunk, grown_exp, stats({"a": (300, 290.0), "b": (300, 100.0),
                                                "c": (20, 10.0)}))
    arms = {a["name"]: a for a in body["arms"]}
    assert arms["a"]["next_share"] == 0 and arms["a"]["prob_best"] is None
    assert arms["c"]["next_share"] == pytest.approx(0.5)  # under-explored: equal share
    assert body["phase"] == "exploring" and body["leader"] in ("b", "c")
    with pytest.raises(SettingsError, match="at least one arm"):
        BANDIT.revise(st, shrunk, grown_exp, st, grown_exp, ("b", "c"), NOW)
    with pytest.raises(SettingsError, match="cannot be changed"):
        get("ab").revise(None, {}, e, None, e, (), NOW)


def test_every_setting_is_in_the_bandit_settings_table() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "experiments.md").read_text()
    table = docs[docs.index("### Bandit settings"):]
    for entry in BANDIT.schema():
        assert f"| `{entry['name']}` |" in table, f"{entry['name']} is not documented"
