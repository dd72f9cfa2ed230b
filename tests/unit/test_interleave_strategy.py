"""The interleave strategy as pure hooks: settings, the merge (answer shapes, failures,
pages), the report from synthetic impressions and clicks, the automatic step, the view."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from champion.routing import RoutingDecision, RoutingRequest
from champion.strategies import Answer, Experiment, SettingsError, get

STRATEGY = get("interleave")
RNG = np.random.default_rng(0)
CATALOGUE = [f"d{i}" for i in range(20)]


def exp(variants: tuple[str, ...] = ("control", "candidate"), **kw: Any) -> Experiment:
    base: dict[str, Any] = dict(
        id="exp_1", endpoint="search", strategy="interleave", variants=variants,
        labels={v: f"search:{i + 1}" for i, v in enumerate(variants)}, control=variants[0],
        salt="salt", status="running", created_at=1000.0, started_at=1000.0)
    base.update(kw)
    return Experiment(**base)


def settings(e: Experiment | None = None, **raw: Any) -> Any:
    return STRATEGY.settings(raw, e or exp())


def merge(s: Any, e: Experiment, rid: str, answers: dict[str, Any],
          context: dict[str, Any] | None = None) -> Any:
    decision = STRATEGY.policy(s, {}, e).decide(RoutingRequest(rid, None, context or {}),
                                                random.Random(0))
    wrapped = {k: v if isinstance(v, Answer) else Answer(True, v) for k, v in answers.items()}
    return STRATEGY.merge(s, e, decision, rid, wrapped)


def good(q: int) -> list[str]:  # the truly relevant items first
    return list(CATALOGUE)


def bad(q: int) -> list[str]:  # the same items, a worse order
    r = random.Random(q)
    head = CATALOGUE[:10]
    r.shuffle(head)
    return head + CATALOGUE[10:]


def simulate(e: Experiment, s: Any, rankers: dict[str, Callable[[int], Any]], n: int,
             click: Callable[[list[str], random.Random], list[Any]], users: int = 50
             ) -> dict[str, Any]:
    """The statistics a report reads, from ``n`` merged impressions clicked by ``click``."""
    rows, feedback = [], {}
    rng = random.Random(7)
    for i in range(n):
        rid = f"req-{i}"
        merged = merge(s, e, rid, {v: f(i) for v, f in rankers.items()})
        detail = json.loads(json.dumps(dict(merged.detail)))
        rows.append({"request_id": rid, "ts": 1000.0 + i, "unit": f"u{i % users}",
                     "detail": detail})
        clicked = click(detail["items"], rng)
        if clicked:
            feedback[rid] = [{"label": clicked, "value": len(clicked), "ts": 1000.0 + i}]
    return {"details": {"requests": rows, "feedback": feedback, "total": n,
                        "truncated": False}}


def cascade(items: list[str], rng: random.Random) -> list[Any]:
    """Scan down; click a relevant item (the first five of the catalogue) and stop there."""
    for item in items:
        if CATALOGUE.index(item) < 5 and rng.random() < 0.7:
            return [item]
        if rng.random() < 0.15:
            return []
    return []


def report(e: Experiment, s: Any, stats: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = STRATEGY.report(s, {}, e, stats, 2000.0, RNG)
    json.dumps(out, allow_nan=False)
    return out


# --------------------------------------------------------------------------- settings


def test_settings_defaults_and_errors_name_the_field() -> None:
    s = settings()
    assert (s.method, s.k, s.fill, s.list_key, s.item_key) == ("team_draft", 10, "continue",
                                                               None, "id")
    assert STRATEGY.settings(STRATEGY.dump(s), exp()) == s
    with pytest.raises(SettingsError, match=r"interleave\.method: balanced interleaving"):
        settings(exp(("a", "b", "c")), method="balanced")
    with pytest.raises(SettingsError, match=r"interleave\.k: must be at most 100"):
        settings(k=500)
    with pytest.raises(SettingsError, match=r"interleave\.fil: unknown setting"):
        settings(fil="stop")
    with pytest.raises(SettingsError, match=r"interleave\.list_key"):
        settings(list_key="a..b")
    with pytest.raises(SettingsError, match="on_winner"):
        STRATEGY.settings({}, exp(labels={"control": "search:1", "candidate": "other:1"},
                                  auto={"enabled": True}))
    names = {f["name"] for f in STRATEGY.schema()}
    assert {"method", "k", "fill", "list_key", "item_key", "click_ids"} <= names


# --------------------------------------------------------------------------- merging


def test_merge_answers_the_list_with_teams_and_logs_what_a_click_needs() -> None:
    e, s = exp(), settings(k=5)
    m = merge(s, e, "req-1", {"control": ["d1", "d2", "d3", "d4", "d5"],
                              "candidate": ["d2", "d6", "d1", "d7", "d3"]})
    assert m.data == ["d1", "d2", "d6", "d3", "d7"]  # spec §1.3 vector, salt aside
    assert len(m.extra["teams"]) == 5 and set(m.extra["teams"]) <= {"control", "candidate"}
    assert m.detail["items"] == m.data and m.detail["teams"] == m.extra["teams"]
    assert m.detail["competitive"] is True and "failed" not in m.detail
    assert m.arm == "control+candidate"
    again = merge(s, e, "req-1", {"control": ["d1", "d2", "d3", "d4", "d5"],
                                  "candidate": ["d2", "d6", "d1", "d7", "d3"]})
    assert again == m  # deterministic for a request id


def test_merge_keeps_the_rankers_answer_shape_and_objects() -> None:
    e, s = exp(), settings(k=4, list_key="results.hits", item_key="doc.id")

    def answer(ids: list[int], who: str) -> dict[str, Any]:
        return {"results": {"hits": [{"doc": {"id": i}, "by": who} for i in ids],
                            "total": 99}, "model": who}

    m = merge(s, e, "r", {"control": answer([1, 2, 3, 4], "c"),
                          "candidate": answer([3, 5, 1, 6], "n")})
    assert m.data["model"] == "c" and m.data["results"]["total"] == 99  # the control's shape
    hits = m.data["results"]["hits"]
    assert len(hits) == 4 and len({h["doc"]["id"] for h in hits}) == 4
    # each item is the object of the ranker that drafted it
    for hit, team in zip(hits, m.extra["teams"], strict=True):
        assert hit["by"] == ("c" if team == "control" else "n")
    assert m.detail["items"] == [str(h["doc"]["id"]) for h in hits]


def test_a_failing_ranker_leaves_the_other_list_served_alone_not_competitive() -> None:
    e, s = exp(), settings(k=3)
    m = merge(s, e, "r", {"control": Answer(False, error="ModelError: boom"),
                          "candidate": ["x", "y", "z", "w"]})
    assert m.data == ["x", "y", "z"] and m.extra["teams"] == ["candidate"] * 3
    assert m.arm == "candidate"
    assert m.detail["competitive"] is False and m.detail["reason"] == "failed"
    assert m.detail["failed"] == {"control": "ModelError: boom"}
    # an answer that is not a list counts as a failure of that ranker
    m2 = merge(s, e, "r", {"control": ["a", "b"], "candidate": {"oops": 1}})
    assert m2.data == ["a", "b"] and "no ranked list" in m2.detail["failed"]["candidate"]
    # no list at all: the control's answer as it came, nothing merged
    m3 = merge(s, e, "r", {"control": {"error": "x"}, "candidate": 5})
    assert m3.data == {"error": "x"} and m3.extra["teams"] == [] and m3.arm == "control"


def test_identical_lists_are_served_but_not_competitive() -> None:
    e, s = exp(), settings(k=3)
    m = merge(s, e, "r", {"control": ["a", "b", "c", "d"], "candidate": ["a", "b", "c", "e"]})
    assert m.data == ["a", "b", "c"]
    assert m.detail["competitive"] is False and m.detail["reason"] == "identical"


def test_a_later_page_continues_the_draft_of_the_first() -> None:
    e, s = exp(), settings(k=3)
    answers = {"control": [f"a{i}" for i in range(9)], "candidate": [f"b{i}" for i in range(9)]}
    p1 = merge(s, e, "first", answers)
    p2 = merge(s, e, "second", answers, {"page": 2, "draft": "first"})
    whole = merge(settings(k=6), e, "first", answers)
    assert p1.data + p2.data == whole.data
    assert p2.detail["offset"] == 3 and p2.detail["draft"] == "first"
    with pytest.raises(ValueError, match="draft"):
        merge(s, e, "second", answers, {"page": 2})
    with pytest.raises(ValueError, match="page"):
        merge(s, e, "second", answers, {"page": 0})


def test_probabilistic_and_balanced_merges_keep_their_credit_inputs() -> None:
    e = exp()
    answers = {"control": CATALOGUE[:6], "candidate": CATALOGUE[3:9]}
    m = merge(settings(method="probabilistic", k=4), e, "r", answers)
    assert len(m.detail["probs"]) == 4 and m.detail["method"] == "probabilistic"
    b = merge(settings(method="balanced", k=4), e, "r", answers)
    assert len(b.detail["ranks"]) == 4 and b.detail["method"] == "balanced"


# --------------------------------------------------------------------------- reports


@pytest.mark.parametrize("method", ["team_draft", "balanced", "probabilistic"])
def test_the_better_ranker_wins(method: str) -> None:
    e, s = exp(), settings(method=method)
    stats = simulate(e, s, {"control": bad, "candidate": good}, 1500, cascade, users=300)
    r = report(e, s, stats)
    pair = r["pairs"][0]
    assert (pair["a"], pair["b"]) == ("candidate", "control")
    assert pair["wins"] > pair["losses"] and pair["delta"]["estimate"] > 0
    assert pair["users"]["sign_p"] < 0.01 and pair["preferred"] == "candidate"
    assert r["decision"]["winner"] == "candidate" and r["decision"]["code"] == "winner"
    assert "A/B test" in r["next_step"] and "A/B test" in r["view"]["headline"]
    assert r["impressions"]["total"] == 1500
    assert r["impressions"]["with_signal"] == pair["impressions"]
    if method == "probabilistic":
        assert pair["expected_outcome"] > 0
    assert not r["first_slot"]["fired"]


def test_identical_rankers_give_no_signal_and_no_winner() -> None:
    e, s = exp(), settings()
    stats = simulate(e, s, {"control": good, "candidate": good}, 300, cascade)
    r = report(e, s, stats)
    assert r["impressions"]["not_competitive"] == {"identical": 300}
    assert r["pairs"][0]["impressions"] == 0
    assert r["decision"]["winner"] is None and r["decision"]["code"] == "no_signal"


def test_no_impressions_report_is_neutral() -> None:
    e, s = exp(), settings()
    r = report(e, s, {"details": {"requests": [], "feedback": {}, "total": 0}})
    assert r["decision"]["code"] == "no_impressions" and r["pairs"][0]["sign_p"] == 1.0
    assert any(a["id"] == "no_impressions" for a in r["view"]["alerts"])


def test_clicks_by_position_item_and_weight_and_bad_clicks_are_counted() -> None:
    e, s = exp(), settings(k=3)
    stats = simulate(e, s, {"control": bad, "candidate": good}, 3, lambda items, rng: [])
    rows = stats["details"]["requests"]
    teams = [r["detail"]["teams"] for r in rows]
    items = [r["detail"]["items"] for r in rows]
    fb = stats["details"]["feedback"]
    fb["req-0"] = [{"label": [0, 0, 7, "nope", {"weight": 1}]},  # 0 twice counts once
                   {"label": "not a list"}]
    fb["req-1"] = [{"label": [{"item": items[1][2], "weight": 30.0}]},
                   {"label": [{"position": 0, "weight": 0}]}]  # weight 0: no credit
    r = report(e, s, stats)
    bad_clicks = r["bad_clicks"]
    assert bad_clicks == {"total": 4, "unshown_position": 1, "unknown_item": 1,
                          "malformed": 2, "impressions": 1}
    assert r["impressions"]["clicked"] == 2
    first = r["pairs"][0]
    wins_for = {"candidate": first["wins"], "control": first["losses"]}
    competitive = [i for i in (0, 1) if rows[i]["detail"]["competitive"]]
    expected = Counterlike()
    for i in competitive:
        expected[teams[i][0] if i == 0 else teams[i][2]] += 1
    assert wins_for == {"candidate": expected["candidate"], "control": expected["control"]}
    assert any(a["id"] == "bad_clicks" for a in r["view"]["alerts"])


class Counterlike(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> int:
        return 0


def test_failures_are_counted_and_not_credited() -> None:
    e, s = exp(), settings()

    def broken(q: int) -> Answer:
        return Answer(False, error="ModelError: down")

    stats = simulate(e, s, {"control": good, "candidate": broken}, 40,
                     lambda items, rng: [items[0]])
    r = report(e, s, stats)
    assert r["impressions"]["failed"] == {"control": 0, "candidate": 40}
    assert r["impressions"]["not_competitive"] == {"failed": 40}
    assert r["pairs"][0]["impressions"] == 0 and r["decision"]["winner"] is None
    assert any(a["id"] == "failures" for a in r["view"]["alerts"])


def test_user_level_is_the_default_decision_and_a_heavy_user_cannot_carry_it() -> None:
    e, s = exp(), settings()
    # one heavy user prefers the candidate on 200 impressions; 30 others split evenly
    rows, feedback = [], {}
    for i in range(260):
        rid = f"r{i}"
        m = merge(s, e, rid, {"control": bad(i), "candidate": good(i)})
        d = json.loads(json.dumps(dict(m.detail)))
        unit = "heavy" if i < 200 else f"u{i % 30}"
        want = "candidate" if i < 200 else ("candidate" if i % 2 else "control")
        pos = next((p for p, t in enumerate(d["teams"]) if t == want), None)
        rows.append({"request_id": rid, "ts": float(i), "unit": unit, "detail": d})
        if pos is not None and d["competitive"]:
            feedback[rid] = [{"label": [pos]}]
    stats = {"details": {"requests": rows, "feedback": feedback, "total": len(rows)}}
    r = report(e, s, stats)
    pair = r["pairs"][0]
    assert pair["sign_p"] < 1e-6  # impression level: overwhelming
    assert pair["users"]["units"] <= 31 and pair["users"]["sign_p"] > 0.05
    assert r["decision"]["winner"] is None
    by_imp = settings(decide_by="impression")
    assert report(e, by_imp, stats)["decision"]["winner"] == "candidate"


def test_multileaving_compares_every_pair_with_holm() -> None:
    e = exp(("control", "mid", "best"))
    s = settings(e)

    def mid(q: int) -> list[str]:
        r = random.Random(q + 1)
        head = CATALOGUE[:5]
        r.shuffle(head)
        return head + CATALOGUE[5:]

    stats = simulate(e, s, {"control": bad, "mid": mid, "best": good}, 1500, cascade,
                     users=400)
    r = report(e, s, stats)
    assert r["method"] == "team_draft_multileave"
    pairs = {(p["a"], p["b"]): p for p in r["pairs"]}
    assert set(pairs) == {("mid", "control"), ("best", "control"), ("best", "mid")}
    assert all(p["p_adjusted"] >= p["p_value"] for p in pairs.values())
    assert pairs[("best", "control")]["preferred"] == "best"
    assert r["decision"]["test"].endswith("Holm-corrected over the pairs")


def test_first_slot_check_fires_on_a_position_bias() -> None:
    e, s = exp(), settings()
    stats = simulate(e, s, {"control": bad, "candidate": good}, 400, cascade)
    for row in stats["details"]["requests"]:  # a client that always puts control first
        d = row["detail"]
        if d["teams"][0] != "control":
            i = d["teams"].index("control")
            d["teams"][0], d["teams"][i] = d["teams"][i], d["teams"][0]
            d["items"][0], d["items"][i] = d["items"][i], d["items"][0]
    r = report(e, s, stats)
    assert r["first_slot"]["fired"] and r["decision"]["code"] == "first_slot"
    assert r["view"]["alerts"][0]["id"] == "first_slot"


# --------------------------------------------------------------------------- steps, timeline


def test_automatic_decision_promotes_or_stops_once_the_always_valid_test_agrees() -> None:
    e = exp(auto={"enabled": True, "min_units": 50})
    s = settings(e)
    assert STRATEGY.cadence(s, e) == 5.0 and STRATEGY.cadence(s, exp()) is None
    stats = simulate(e, s, {"control": bad, "candidate": good}, 2000, cascade, users=500)
    r = report(e, s, stats)
    assert r["decision"]["winner"] == "candidate" and r["decision"]["auto_ready"]
    step = STRATEGY.step(s, {}, e, r, 2000.0)
    assert step is not None and step.decision == {"promote": "candidate"}
    assert "A/B test" in step.reason
    keep = settings(e, on_winner="stop")
    step2 = STRATEGY.step(keep, {}, e, report(e, keep, stats), 2000.0)
    assert step2 is not None and step2.decision == {"action": "keep",
                                                    "preferred": "candidate"}
    assert STRATEGY.step(s, {}, exp(), r, 2000.0) is None  # auto off
    few = exp(auto={"enabled": True, "min_units": 10_000})
    assert STRATEGY.step(settings(few), {}, few, r, 2000.0) is None
    assert STRATEGY.promotable(s, {}, e, r) == "candidate"


def test_snapshot_and_view_cover_the_charts() -> None:
    e, s = exp(), settings()
    r = report(e, s, simulate(e, s, {"control": bad, "candidate": good}, 300, cascade))
    point = STRATEGY.snapshot(r)
    assert point is not None
    key = "candidate_vs_control"
    assert set(point["pairs"][key]) == {"wins", "losses", "ties", "delta", "p"}
    assert point["first_slot"]["control"] + point["first_slot"]["candidate"] == pytest.approx(1)
    charts = {c["id"]: c for c in r["view"]["charts"]}
    assert {"delta", "wins", "first_slot", "outcomes"} <= set(charts)

    def resolve(path: str) -> Any:
        value: Any = point
        for part in path.split("."):
            value = value[part]
        return value

    for c in charts.values():
        if c["source"] == "timeline":
            for series in c["series"]:
                for k in ("path", "low_path", "high_path"):
                    if k in series:
                        resolve(series[k])
    assert {t["id"] for t in r["view"]["tables"]} == {"pairs", "impressions", "sample_size"}
    size = r["pairs"][0]["sample_size"]
    assert size["decisive_needed"] == 799  # 783 padded by 2 %
    assert STRATEGY.describe(s, {}, e)["interleave"]["method"] == "team_draft"


def test_decision_params_default_to_empty_for_other_policies() -> None:
    assert RoutingDecision("a").params == {}
