"""Experiments through the real server: A/B assignment and statistics, shadows, lifecycle."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from champion.errors import BadRequest, Conflict, Unauthorized
from tests.e2e.rawhttp import post_many


def score(x):
    return 1


def score_v2(x):
    return 2


def send_all(server, name, units, *, headers=None):
    """POST /v1/NAME once per unit, over a few keep-alive connections."""
    results = post_many(server.port, f"/v1/{name}", [{"data": 0}] * len(units),
                        [{"X-Champion-Unit": u, **(headers or {})} for u in units])
    for status, body in results:
        assert status == 200, body
    return [(u, body) for u, (_, body) in zip(units, results, strict=True)]


@pytest.fixture()
def two_versions(client, unique_name):
    client.deploy(score, unique_name)
    client.deploy(score_v2, unique_name)
    return unique_name


def test_ab_split_is_weighted_sticky_and_reweighting_moves_only_what_it_must(
        server, client, two_versions):
    name = two_versions
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"},
                                 weights={"control": 90, "candidate": 10})
    assert e["status"] == "running"
    units = [f"user-{i}" for i in range(20_000)]
    first = dict((u, r["variant"]) for u, r in send_all(server, name, units))
    n_candidate = sum(v == "candidate" for v in first.values())
    # Binomial(20000, 0.1): sd = 42.4; allow 4 sd.
    assert abs(n_candidate - 2000) < 4 * 42.5, n_candidate

    sample = units[:3000]
    again = send_all(server, name, sample)
    assert all(first[u] == r["variant"] for u, r in again), "units keep their variant"
    served = {r["variant"]: r["version"] for _, r in again}
    assert served == {"control": f"{name}:1", "candidate": f"{name}:2"}
    assert {r["experiment"] for _, r in again} == {e["id"]}

    client.reweight(e["id"], {"control": 80, "candidate": 20})
    time.sleep(0.2)
    after = dict((u, r["variant"]) for u, r in send_all(server, name, units[:5000]))
    moved = [u for u, v in after.items() if v != first[u]]
    assert all(first[u] == "control" and after[u] == "candidate" for u in moved)
    # About 10 % of all units (1/9 of the control's) move; none that need not.
    assert abs(len(moved) / 5000 - 0.10) < 0.02, len(moved)

    rows = client.logs(name, limit=5)
    assert rows[0]["experiment"] == e["id"] and rows[0]["arm"] in ("control", "candidate")
    # The SRM check counts the units seen since the re-weighting, against the new weights.
    for _ in range(100):
        report = client.report(e["id"])
        if sum(report["srm"]["observed"].values()) >= 5000:
            break
        time.sleep(0.05)
    assert report["srm"]["fired"] is False, report["srm"]["message"]
    client.stop_experiment(e["id"])


def _conversion_traffic(server, client, name, e, rates, n_units, seed):
    rng = np.random.default_rng(seed)
    answers = send_all(server, name, [f"u{seed}-{i}" for i in range(n_units)])
    items = [{"request_id": r["request_id"],
              "reward": int(rng.random() < rates[r["variant"]])} for _, r in answers]
    for i in range(0, len(items), 10_000):
        client.feedback(name, items=items[i:i + 10_000])
    for _ in range(100):  # the request log is flushed within the flush interval
        report = client.report(e["id"])
        if sum(a["units"] for a in report["arms"]) == n_units:
            return report
        time.sleep(0.05)
    raise AssertionError("the report never saw all units")


def _comparison(report, metric):
    return next(c for c in report["comparisons"] if c["metric"] == metric)


def test_a_three_point_conversion_lift_is_significant_and_an_aa_test_is_not(
        server, client, two_versions):
    name = two_versions
    # Fixed salts: the assignment, and so the simulated outcome, is the same on every run.
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"},
                                 metrics={"primary": "reward"}, salt="lift-test")
    report = _conversion_traffic(server, client, name, e,
                                 {"control": 0.10, "candidate": 0.13}, 8000, seed=1)
    lift = _comparison(report, "reward")
    assert lift["significant"] and lift["p_value"] < 0.01
    assert 0.01 < lift["absolute"]["estimate"] < 0.05
    assert report["srm"]["fired"] is False
    assert 0.5 < lift["chance_to_beat_control"] <= 1
    client.stop_experiment(e["id"], promote="candidate")
    assert client.deployment(name)["aliases"]["production"] == 2

    aa = client.create_experiment(name, "ab", {"a": f"{name}:2", "b": f"{name}:2"},
                                  metrics={"primary": "reward"}, salt="aa-test")
    report = _conversion_traffic(server, client, name, aa, {"a": 0.10, "b": 0.10}, 8000,
                                 seed=2)
    assert not _comparison(report, "reward")["significant"]
    assert not _comparison(report, "reward")["sequential"]["significant"]
    assert report["decision"]["winner"] is None
    client.stop_experiment(aa["id"])


def test_srm_fires_when_assignment_is_corrupted(server, client, two_versions):
    name = two_versions
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"},
                                 weights={"control": 90, "candidate": 10})
    send_all(server, name, [f"a{i}" for i in range(1500)])
    # A buggy client forces half its users into the candidate.
    send_all(server, name, [f"b{i}" for i in range(1500)],
             headers={"x-champion-variant": "candidate",
                      "authorization": f"Bearer {server.token}"})
    for _ in range(100):
        report = client.report(e["id"])
        if sum(a["units"] for a in report["arms"]) == 3000:
            break
        time.sleep(0.05)
    assert report["srm"]["fired"] is True
    assert "SAMPLE RATIO MISMATCH" in report["srm"]["message"]
    client.stop_experiment(e["id"])


def test_the_variant_override_needs_the_admin_token(server, client, two_versions):
    name = two_versions
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"})
    with server.http() as http:
        r = http.post(f"/v1/{name}", json={"data": 0}, headers={"x-champion-variant": "candidate"})
        assert r.status_code == 401
        r = http.post(f"/v1/{name}", json={"data": 0}, headers={
            "x-champion-variant": "nope", "authorization": f"Bearer {server.token}"})
        assert r.status_code == 400 and "nope" in r.json()["error"]["message"]
        r = http.post(f"/v1/{name}", json={"data": 0}, headers={
            "x-champion-variant": "candidate", "authorization": f"Bearer {server.token}"})
        assert r.json()["variant"] == "candidate" and r.json()["data"] == 2
        assert r.headers["x-champion-experiment"] == e["id"]
        # A version called directly bypasses the experiment.
        assert http.post(f"/v1/{name}/1", json={"data": 0}).json()["variant"] == f"{name}:1"
    client.stop_experiment(e["id"])


def test_lifecycle_is_recorded_and_one_experiment_runs_per_endpoint(client, two_versions):
    name = two_versions
    e = client.create_experiment(name, "ab", {"control": 1, "candidate": 2}, start=False)
    assert e["status"] == "draft" and e["variants"] == {"control": f"{name}:1",
                                                         "candidate": f"{name}:2"}
    assert client.predict(name, 0) == 1  # a draft does not route
    client.start_experiment(e["id"], reason="go")
    with pytest.raises(Conflict, match="already has a running experiment"):
        client.create_experiment(name, "ab", {"a": 1, "b": 2})
    assert len(client.experiments(name)) == 1  # the refused one left no draft behind
    other = client.create_experiment(name, "ab", {"a": 1, "b": 2}, start=False)
    with pytest.raises(Conflict, match="already has a running experiment"):
        client.start_experiment(other["id"])
    client.pause_experiment(e["id"], reason="incident")
    assert {client.get_inference(name, 0, unit=f"p{i}")["variant"] for i in range(20)} == {
        f"{name}:1"}  # paused: production answers
    with pytest.raises(Conflict, match="paused"):
        client.pause_experiment(e["id"])
    client.resume_experiment(e["id"])
    stopped = client.stop_experiment(e["id"], promote="candidate", reason="better")
    assert stopped["decision"] == {"action": "promote", "variant": "candidate", "version": 2}
    assert client.deployment(name)["aliases"]["production"] == 2
    history = client.experiment(e["id"])["history"]
    assert [h["action"] for h in history] == ["create", "start", "pause", "resume", "stop"]
    assert history[2]["reason"] == "incident" and history[2]["actor"]
    with pytest.raises(BadRequest, match="unknown strategy"):
        client.create_experiment(name, "roulette", {"a": 1, "b": 2})
    with pytest.raises(BadRequest, match="at least two"):
        client.create_experiment(name, "ab", {"a": 1})
    client.stop_experiment(other["id"])


def flaky_shadow(x):
    if x % 3 == 0:
        raise RuntimeError("shadow bug")
    return 1


def slow_shadow(x):
    import time as _t

    _t.sleep(2)
    return 1


def label_of(x):
    return int(x % 2 == 0)


def label_mostly(x):
    return int(x % 2 == 0) if x % 10 else 1 - int(x % 2 == 0)


def test_a_failing_or_slow_shadow_leaves_live_answers_untouched(server, client, unique_name):
    name = unique_name
    client.deploy(label_of, name)
    flaky = name + "-flaky"
    slow = name + "-slow"
    client.deploy(flaky_shadow, flaky)
    client.deploy(slow_shadow, slow, timeout=1)
    e = client.create_experiment(name, "shadow", {"live": f"{name}:1", "flaky": f"{flaky}:1",
                                                  "slow": f"{slow}:1"})
    with server.http() as http:
        http.post(f"/v1/{name}", json={"data": 1})  # warm the live worker
        started = time.perf_counter()
        answers = [http.post(f"/v1/{name}", json={"data": i}) for i in range(30)]
        elapsed = time.perf_counter() - started
    assert all(r.status_code == 200 for r in answers)
    assert [r.json()["data"] for r in answers] == [int(i % 2 == 0) for i in range(30)]
    assert {r.json()["variant"] for r in answers} == {"live"}
    assert elapsed < 10, "live calls never waited for the 2 s shadow"
    deadline = time.time() + 20
    while time.time() < deadline:
        report = client.report(e["id"])["shadows"]
        if report["flaky"]["counts"]["pairs"] >= 30 and report["slow"]["counts"]["pairs"] >= 1:
            break
        time.sleep(0.2)
    flaky_counts = report["flaky"]["counts"]
    assert flaky_counts["shadow_errors"] == 10 and flaky_counts["live_errors"] == 0
    assert report["slow"]["counts"]["shadow_error_rate"] == 1.0  # every slow call timed out
    client.stop_experiment(e["id"])


def test_shadow_report_compares_classifications_and_a_shadow_can_be_promoted(
        server, client, unique_name):
    name = unique_name
    client.deploy(label_of, name)
    client.deploy(label_mostly, name)
    e = client.create_experiment(name, "shadow", {"live": 1, "candidate": 2})
    rids = [client.get_inference(name, i)["request_id"] for i in range(200)]
    client.feedback(name, items=[{"request_id": r, "label": int(i % 2 == 0)}
                                 for i, r in enumerate(rids)])
    for _ in range(100):
        report = client.report(e["id"])["shadows"]["candidate"]
        if report["counts"]["pairs"] >= 200:
            break
        time.sleep(0.1)
    assert report["kind"] == "classification"
    assert report["agreement"]["rate"] == pytest.approx(0.9, abs=0.01)
    assert report["agreement"]["ci_low"] < 0.9 < report["agreement"]["ci_high"]
    assert report["labels"]["mcnemar"]["p_value"] < 0.01
    stopped = client.stop_experiment(e["id"], promote="candidate")
    assert stopped["decision"]["version"] == 2
    assert client.deployment(name)["aliases"]["production"] == 2


def test_automatic_decision_promotes_a_clear_winner(tmp_path):
    from tests.conftest import Server

    srv = Server(tmp_path / "data", extra_args=["--controller-interval", "0.3"]).start()
    try:
        with srv.client() as c:
            c.deploy(score, "auto")
            c.deploy(score_v2, "auto")
            e = c.create_experiment("auto", "ab", {"control": 1, "candidate": 2},
                                    metrics={"primary": "reward"},
                                    auto={"enabled": True, "min_units": 100})
            rng = np.random.default_rng(3)
            answers = send_all(srv, "auto", [f"u{i}" for i in range(3000)])
            rates = {"control": 0.10, "candidate": 0.30}
            c.feedback("auto", items=[{"request_id": r["request_id"],
                                        "reward": int(rng.random() < rates[r["variant"]])}
                                       for _, r in answers])
            deadline = time.time() + 30  # 15 s was once too short in a loaded CI run
            while time.time() < deadline:
                state = c.experiment(e["id"])
                if state["status"] == "stopped":
                    break
                time.sleep(0.2)
            assert state["status"] == "stopped"
            assert state["decision"]["variant"] == "candidate"
            assert state["history"][-1]["actor"] == "controller"
            assert c.deployment("auto")["aliases"]["production"] == 2
    finally:
        srv.stop()


def test_apply_a_yaml_experiment_from_the_cli(server, client, two_versions, tmp_path):
    name = two_versions
    spec = tmp_path / "exp.yaml"
    spec.write_text(f"""
kind: experiment
name: try-v2
endpoint: {name}
strategy: ab
variants:
  control: {name}:1
  candidate: {name}:2
weights: {{control: 70, candidate: 30}}
metrics:
  primary: reward
""")
    env = {**os.environ, "CHAMPION_URL": server.url, "CHAMPION_TOKEN": server.token}
    out = subprocess.run([sys.executable, "-m", "champion", "apply", "-f", str(spec)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    running = client.experiments(name, "running")
    assert len(running) == 1 and running[0]["name"] == "try-v2"
    assert running[0]["weights"] == {"control": 0.7, "candidate": 0.3}
    spec.write_text(spec.read_text().replace("70, candidate: 30", "50, candidate: 50"))
    out = subprocess.run([sys.executable, "-m", "champion", "apply", "-f", str(spec)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert "weights updated" in out.stdout
    assert client.experiments(name, "running")[0]["weights"] == {"control": 0.5,
                                                                  "candidate": 0.5}
    report = subprocess.run([sys.executable, "-m", "champion", "experiment", "report",
                             running[0]["id"]], capture_output=True, text=True, env=env,
                            timeout=60)
    assert report.returncode == 0, report.stderr
    client.stop_experiment(running[0]["id"])
    with pytest.raises(Unauthorized):
        from champion.client import Client

        with Client(server.url, "bad") as bad:
            bad.experiments()


def test_cuped_uses_a_pre_period_covariate_to_narrow_the_interval(server, client, two_versions):
    name = two_versions
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"},
                                 metrics={"primary": "revenue", "covariate": "pre_revenue"},
                                 salt="cuped-test")  # a fixed assignment: a repeatable outcome
    rng = np.random.default_rng(11)
    units = [f"c{i}" for i in range(2000)]
    pre = {u: float(rng.gamma(2.0, 10.0)) for u in units}
    client.feedback(name, items=[{"unit": u, "metric": "pre_revenue", "value": v,
                                  "event_id": "pre"} for u, v in pre.items()])
    answers = send_all(server, name, units)
    items = [{"request_id": r["request_id"], "metric": "revenue",
              "value": pre[u] + rng.normal(0, 3) + (1.0 if r["variant"] == "candidate" else 0)}
             for u, r in answers]
    client.feedback(name, items=items)
    for _ in range(100):
        report = client.report(e["id"])
        if sum(a["units"] for a in report["arms"]) == 2000:
            break
        time.sleep(0.05)
    revenue = _comparison(report, "revenue")
    cuped = revenue["cuped"]
    assert cuped is not None and cuped["variance_reduction"] > 0.5
    plain_width = revenue["absolute"]["ci_high"] - revenue["absolute"]["ci_low"]
    cuped_width = cuped["absolute"]["ci_high"] - cuped["absolute"]["ci_low"]
    assert cuped_width < plain_width / 2
    assert cuped["significant"] and cuped["absolute"]["ci_low"] < 1.0 < cuped["absolute"][
        "ci_high"]
    client.stop_experiment(e["id"])


def doubled(x):
    return 2 * x


def doubled_but_not_tens(x):
    if x % 10 == 0:
        raise ValueError("a bad row")
    return 2 * x


def _shadow_run(server, client, name, shadow_version):
    e = client.create_experiment(name, "shadow", {"live": 1, "candidate": shadow_version})
    results = post_many(server.port, f"/v1/{name}", [{"data": i} for i in range(400)],
                        [{}] * 400, connections=16)
    assert [body["data"] for _, body in results] == [2 * i for i in range(400)]
    deadline = time.time() + 30
    while time.time() < deadline:
        report = client.report(e["id"])
        if report["shadows"]["candidate"]["counts"]["pairs"] >= 400:
            break
        time.sleep(0.2)
    client.stop_experiment(e["id"])
    return report


def test_shadow_copies_sent_together_are_paired_with_their_own_requests(
        server, client, unique_name):
    """Many concurrent requests: their shadow copies leave in batches, each answer is
    recorded under its own request id, and one failing input fails alone."""
    name = unique_name
    client.deploy(doubled, name)
    client.deploy(doubled, name)
    client.deploy(doubled_but_not_tens, name)
    report = _shadow_run(server, client, name, 2)
    shadow, mirroring = report["shadows"]["candidate"], report["mirroring"]
    assert shadow["counts"]["pairs"] == 400 and shadow["agreement"]["rate"] == 1.0
    assert mirroring["worker_calls"] < mirroring["mirrored"], mirroring  # sent in batches
    report = _shadow_run(server, client, name, 3)
    shadow = report["shadows"]["candidate"]
    assert shadow["counts"]["pairs"] == 400 and shadow["counts"]["shadow_errors"] == 40
    # every other copy answered what the live version did for its own request
    assert shadow["agreement"]["rate"] == 1.0 and shadow["counts"]["compared"] == 360
