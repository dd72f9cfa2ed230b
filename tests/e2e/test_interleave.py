"""Interleaving through the real server: two rankers over a catalogue whose true relevance
the test knows, a simulated user clicking with a cascade model. The better ranker wins within
a few thousand impressions while an A/B test on the same click model, through the same
server with as many requests, is not yet significant; identical rankers give no winner; a
ranker that raises leaves every answer 200; the two rankers run concurrently."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import pytest
from benchmarks.interleave_sensitivity import QUERIES, cascade, ranker_bad, ranker_good

from champion.errors import BadRequest
from tests.e2e.rawhttp import post_many

N = 2000  # impressions (and A/B requests)
USERS = 1000
SALT = "il-e2e"


# The click model and the rankers live in benchmarks/interleave_sensitivity.py, which also
# computes how many impressions each test needs at the model's long-run effects (about 310
# for interleaving against about 36,000 for the A/B test: 110x).


def traffic(server: Any, name: str, n: int, seed: str) -> list[tuple[str, list[str], Any]]:
    """``n`` queries from ``USERS`` users; the user's clicks on each answer, sent back."""
    bodies = [{"data": i % QUERIES} for i in range(n)]
    headers = [{"X-Champion-Unit": f"u{i % USERS}"} for i in range(n)]
    answers = post_many(server.port, f"/v1/{name}", bodies, headers)
    assert {s for s, _ in answers} == {200}, [b for s, b in answers if s != 200][:3]
    out, items = [], []
    for i, (_, body) in enumerate(answers):
        clicks = cascade(body["data"], i % QUERIES, random.Random(f"{seed}-{i}"))
        out.append((body["request_id"], clicks, body))
        if clicks:
            items.append({"request_id": body["request_id"], "clicks": clicks})
    with server.client() as c:
        r = c.feedback(name, items=items)
    assert r["accepted"] == len(items), r
    return out


def settled_report(client: Any, exp_id: str, impressions: int, timeout: float = 30.0
                   ) -> dict[str, Any]:
    """The report once the request log holds every impression (it is written in batches)."""
    deadline = time.time() + timeout
    while True:
        report = client.report(exp_id)
        if report["impressions"]["total"] >= impressions or time.time() > deadline:
            return report
        time.sleep(0.2)


def test_the_better_ranker_wins_where_an_ab_test_is_not_yet_significant(client, server,
                                                                          unique_name):
    name = unique_name
    client.deploy(ranker_bad, name)   # v1, production
    client.deploy(ranker_good, name)  # v2
    e = client.create_experiment(name, "interleave", {"control": f"{name}:1",
                                                      "candidate": f"{name}:2"},
                                 salt=SALT, interleave={"k": 10})
    assert e["strategy"] == "interleave" and e["interleave"]["method"] == "team_draft"
    t0 = time.time()
    shown = traffic(server, name, N, "il")
    took = time.time() - t0
    _, _, body = shown[0]
    assert len(body["data"]) == 10 and len(body["teams"]) == 10
    assert set(body["teams"]) <= {"control", "candidate"}
    assert body["variant"] == "control+candidate" and body["experiment"] == e["id"]
    report = settled_report(client, e["id"], N)
    pair = report["pairs"][0]
    assert report["impressions"]["total"] == N
    assert (pair["a"], pair["b"]) == ("candidate", "control")
    assert pair["users"]["sign_p"] < 0.01 and pair["sign_p"] < 0.01, pair
    assert report["decision"]["winner"] == "candidate", report["decision"]
    assert pair["delta"]["low"] > 0 and pair["users"]["delta"]["low"] > 0
    assert not report["first_slot"]["fired"] and report["bad_clicks"]["total"] == 0
    il_needed = pair["sample_size"]["at_observed_win_rate"] / (
        pair["sample_size"]["decisive_share"] or 1)
    # the log row has what a click is credited against
    with server.admin() as h:
        logged = h.get(f"/api/deployments/{name}/logs", params={"limit": 1}).json()
    detail = logged["requests"][0]["detail"]
    assert '"teams"' in detail and '"items"' in detail
    client.stop_experiment(e["id"], reason="done")

    # The A/B test on the same click model, as many requests, the same server: each user
    # sees one ranker's list; the metric is clicks per user.
    ab = client.create_experiment(name, "ab", {"control": f"{name}:1",
                                               "candidate": f"{name}:2"},
                                  salt=SALT, metrics={"primary": "clicks"})
    ab_shown = traffic(server, name, N, "ab")
    deadline = time.time() + 30
    while True:
        ab_report = client.report(ab["id"])
        if sum(a["requests"] for a in ab_report["arms"]) >= N or time.time() > deadline:
            break
        time.sleep(0.2)
    comparison = next(c for c in ab_report["comparisons"] if c["metric"] == "clicks")
    assert comparison["p_value"] > 0.05, comparison
    assert ab_report["decision"]["winner"] is None
    client.stop_experiment(ab["id"])
    # impressions each needs for 80 % power at alpha 0.05, at the effects seen here
    per_arm: dict[str, list[int]] = {}
    for _, clicks, b in ab_shown:
        per_arm.setdefault(b["variant"], []).append(len(clicks))
    lo, hi = (statistics.mean(per_arm[v]) for v in ("control", "candidate"))
    var = sum(statistics.variance(per_arm[v]) for v in ("control", "candidate"))
    ab_needed = 2 * (1.959964 + 0.841621) ** 2 * var / (hi - lo) ** 2
    print(f"\ninterleaving: {N} impressions in {took:.1f} s; user-level sign p = "
          f"{pair['users']['sign_p']:.2g} ({pair['users']['units']} users), impression "
          f"win rate {pair['win_rate']:.3f}: about {il_needed:.0f} impressions for 80 % "
          f"power")
    print(f"A/B on clicks per user: p = {comparison['p_value']:.3f}; clicks per impression "
          f"{lo:.3f} -> {hi:.3f}: about {ab_needed:.0f} impressions for 80 % power "
          f"({ab_needed / il_needed:.0f}x)")


def test_identical_rankers_give_no_winner(client, server, unique_name):
    name = unique_name
    client.deploy(ranker_good, name)
    client.deploy(ranker_good, name)
    e = client.create_experiment(name, "interleave", {"a": f"{name}:1", "b": f"{name}:2"})
    traffic(server, name, 300, "same")
    report = settled_report(client, e["id"], 300)
    assert report["impressions"]["not_competitive"] == {"identical": 300}
    assert report["decision"]["winner"] is None
    assert report["decision"]["code"] == "no_signal"


def objects_ok(q):
    return {"hits": [{"id": f"d{(q + i) % 20}", "rank": i} for i in range(8)], "took_ms": 1}


def objects_raises(q):
    if q % 3 == 0:
        raise RuntimeError("ranker bug")
    return {"hits": [{"id": f"d{(2 * q + i) % 20}", "rank": i} for i in range(8)],
            "took_ms": 2}


def test_a_ranker_that_raises_leaves_every_answer_200(client, server, unique_name):
    name = unique_name
    client.deploy(objects_ok, name)
    client.deploy(objects_raises, name)
    e = client.create_experiment(name, "interleave", {"control": f"{name}:1",
                                                      "candidate": f"{name}:2"},
                                 interleave={"k": 5, "list_key": "hits"})
    answers = post_many(server.port, f"/v1/{name}", [{"data": q} for q in range(60)],
                        [{}] * 60)
    assert [s for s, _ in answers] == [200] * 60
    for q, (_, body) in enumerate(answers):
        assert body["data"]["took_ms"] == 1  # the control's answer shape
        assert len(body["data"]["hits"]) == 5
        if q % 3 == 0:  # the candidate raised: the control's list alone
            assert body["teams"] == ["control"] * 5 and body["variant"] == "control"
            assert [h["rank"] for h in body["data"]["hits"]] == [0, 1, 2, 3, 4]
        else:
            assert set(body["teams"]) == {"control", "candidate"}
    with server.client() as c:
        c.feedback(name, items=[{"request_id": b["request_id"],
                                 "clicks": [b["data"]["hits"][0]["id"], 99]}
                                for _, b in answers])
    report = settled_report(client, e["id"], 60)
    assert report["impressions"]["failed"]["candidate"] == 20
    assert report["impressions"]["not_competitive"].get("failed") == 20
    assert report["bad_clicks"]["unshown_position"] == 60  # position 99 was never shown
    assert any(a["id"] == "failures" for a in report["view"]["alerts"])


def slow_a(q):
    import time

    time.sleep(0.1)
    return [f"a{i}" for i in range(10)]


def slow_b(q):
    import time

    time.sleep(0.1)
    return [f"b{i}" for i in range(10)]


def test_rankers_run_concurrently_and_batches_pages_and_settings_are_clear(client, server,
                                                                           unique_name):
    name = unique_name
    client.deploy(slow_a, name)
    client.deploy(slow_b, name)
    single = []
    for q in range(6):
        t0 = time.perf_counter()
        client.get_inference(name, q, version=1)
        single.append(time.perf_counter() - t0)
    e = client.create_experiment(name, "interleave", {"a": f"{name}:1", "b": f"{name}:2"},
                                 interleave={"k": 4})
    merged = []
    for q in range(6):
        t0 = time.perf_counter()
        first = client.get_inference(name, q)
        merged.append(time.perf_counter() - t0)
    one, both = statistics.median(single), statistics.median(merged)
    assert both < 1.5 * one, (one, both)  # called one after the other it would be 2x
    # page 2 continues the first page's draft
    with server.http() as h:
        page2 = h.post(f"/v1/{name}", json={"data": 5, "page": 2,
                                            "draft": first["request_id"]}).json()
        no_draft = h.post(f"/v1/{name}", json={"data": 5, "page": 2})
    assert len(set(first["data"] + page2["data"])) == 8 and len(page2["teams"]) == 4
    assert no_draft.status_code == 400 and "draft" in no_draft.json()["error"]["message"]
    with pytest.raises(BadRequest, match="not a batch"):
        client.get_inference(name, [[1, 5], [2, 6]])
    with server.http() as h:  # Modelbit's request options: as on a plain endpoint
        webhook = h.post(f"/v1/{name}", json={"data": 5, "response_webhook": "http://x"})
        bad_timeout = h.post(f"/v1/{name}", json={"data": 5, "timeout_seconds": -1})
    assert webhook.status_code == 400 and "response_webhook" in webhook.text
    assert bad_timeout.status_code == 400 and "timeout_seconds" in bad_timeout.text
    client.stop_experiment(e["id"])
    with pytest.raises(BadRequest, match=r"interleave\.method: balanced interleaving"):
        client.create_experiment(name, "interleave", {"a": 1, "b": 2, "c": 1},
                                 interleave={"method": "balanced"})
    with pytest.raises(BadRequest, match=r"interleave\.k"):
        client.create_experiment(name, "interleave", {"a": 1, "b": 2}, interleave={"k": 0})
    print(f"\nslow rankers (100 ms each): one alone p50 {1000 * one:.0f} ms, "
          f"interleaved p50 {1000 * both:.0f} ms")


def test_the_command_line_and_a_yaml_file_create_and_report_interleaving(client, server,
                                                                          unique_name):
    import io

    import yaml
    from rich.console import Console

    from champion.reporting import render_report
    from tests.e2e.test_cli import run

    name = unique_name
    client.deploy(objects_ok, name)
    client.deploy(objects_raises, name)
    out = run(server, "experiment", "create", name, "--strategy", "interleave",
              "--variant", f"control={name}:1", "--variant", f"candidate={name}:2",
              "--method", "balanced", "--k", "4", "--list-key", "hits", "-q")
    exp_id = out.stdout.strip()
    e = client.experiment(exp_id)
    assert e["interleave"]["method"] == "balanced" and e["interleave"]["k"] == 4
    body = client.get_inference(name, 1)
    client.feedback(name, body["request_id"], clicks=[0], event_id="c1")
    client.feedback(name, body["request_id"], clicks=[{"position": 1, "weight": 2}],
                    event_id="c2")
    report = settled_report(client, exp_id, 1)
    assert report["impressions"]["clicked"] == 1
    console = Console(record=True, width=200, file=io.StringIO())
    render_report(report, console)  # what `champion experiment report` prints
    text = console.export_text()
    assert "Preference per pair" in text and "candidate vs control" in text
    client.stop_experiment(exp_id)
    spec = yaml.safe_load(f"kind: experiment\nname: il-yaml\nendpoint: {name}\n"
                          "strategy: interleave\nstart: true\nvariants:\n"
                          f"  control: {name}:1\n  candidate: {name}:2\n"
                          "interleave:\n  k: 3\n  list_key: hits\n"
                          "  method: probabilistic\n")
    client.apply_experiment({k: v for k, v in spec.items() if k != "kind"})
    running = client.experiments(name, "running")
    assert running[0]["interleave"]["method"] == "probabilistic"
    assert len(client.predict(name, 4)["hits"]) == 3
    with pytest.raises(BadRequest, match="clicks"):
        client.feedback(name, body["request_id"], clicks=[1.5])
