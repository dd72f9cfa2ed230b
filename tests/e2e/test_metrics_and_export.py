"""Metrics per version, Prometheus exposition, the log as data: filters and exports."""

from __future__ import annotations

import csv
import json
import time

import pyarrow.parquet as pq
import pytest

from champion.errors import BadRequest


def classify(x):
    if x == "boom":
        raise ValueError("boom")
    return int(x > 0)


def wait_logged(client, name, n, **filters):
    for _ in range(100):
        rows = client.logs(name, limit=10_000, **filters)
        if len(rows) >= n:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"only {len(rows)} of {n} requests were logged")


@pytest.fixture()
def traffic(client, unique_name):
    """Two versions, some errors, rewards and labels."""
    client.deploy(classify, unique_name)
    client.deploy(classify, unique_name)
    rids = {1: [], 2: []}
    for i in range(20):
        for v in (1, 2):
            r = client.get_inference(unique_name, i - 10, version=v, unit=f"u{i}")
            rids[v].append((r["request_id"], r["data"]))
    for v in (1, 2):
        for i, (rid, _) in enumerate(rids[v]):
            client.feedback(unique_name, rid, reward=1 if (v == 2 or i % 2) else 0)
            client.feedback(unique_name, rid, label=1)  # truth: always 1
    for _ in range(3):
        with pytest.raises(Exception, match="boom"):
            client.predict(unique_name, "boom", version=2)
    wait_logged(client, unique_name, 43)
    return unique_name, rids


def test_metrics_report_requests_errors_latency_feedback_and_accuracy(client, traffic):
    name, _ = traffic
    data = client.metrics(name, since="1h", bucket="5m")
    by_version = {s["version"]: s["totals"] for s in data["versions"]}
    assert by_version[1]["requests"] == 20 and by_version[1]["errors"] == 0
    assert by_version[2]["requests"] == 23 and by_version[2]["errors"] == 3
    assert by_version[2]["error_rate"] == pytest.approx(3 / 23)
    lat = by_version[1]["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert by_version[1]["feedback"]["reward"] == {"count": 20, "mean": 0.5, "sum": 10.0,
                                                   "sum_sq": 10.0}
    assert by_version[2]["feedback"]["reward"]["mean"] == 1.0
    # Outputs are 1 for x > 0, i.e. for 9 of the 20 inputs -10..9.
    assert by_version[1]["accuracy"] == {"labels": 20, "accuracy": 9 / 20}
    for series in data["versions"]:
        buckets = series["buckets"]
        # A few seconds of traffic fall in at most two 5-minute buckets, on the bucket grid.
        assert 1 <= len(buckets) <= 2
        assert all(b["start"] % 300 == 0 and b["requests"] > 0 for b in buckets)
        # (a bucket without rewards has none: traffic that straddles a bucket's edge can
        # leave its rewards all in the next one)
        assert sum(b["feedback"].get("reward", {}).get("count", 0) for b in buckets) == 20


def test_metrics_reject_bad_parameters(client, traffic):
    name, _ = traffic
    with pytest.raises(BadRequest, match="since"):
        client.metrics(name, since="yesterday-ish")
    with pytest.raises(BadRequest, match="60 seconds"):
        client.metrics(name, bucket="10s")


def test_prometheus_exposition(server, traffic):
    name, _ = traffic
    with server.http() as http:
        text = http.get("/metrics").text
    assert f'champion_requests_total{{deployment="{name}",status="200",version="1"}} 20.0' in text
    assert f'champion_requests_total{{deployment="{name}",status="500",version="2"}} 3.0' in text
    assert f'champion_feedback_total{{deployment="{name}",metric="reward"}} 40.0' in text
    assert "champion_request_duration_seconds_bucket" in text


def test_log_filters(client, traffic):
    name, _ = traffic
    assert len(client.logs(name, limit=1000, version=2)) == 23
    assert len(client.logs(name, limit=1000, status=500)) == 3
    assert len(client.logs(name, limit=1000, status=5)) == 3
    one = client.logs(name, unit="u3", feedback=True)
    assert len(one) == 2 and {r["version"] for r in one} == {1, 2}
    assert client.logs(name, since="1h", limit=1000) and not client.logs(
        name, until=time.time() - 3600)


def test_exports_in_jsonl_csv_and_parquet(client, traffic, tmp_path):
    name, _ = traffic
    client.export_logs(name, tmp_path / "a.jsonl", version=1)
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len(lines) == 20 and all("feedback" in x for x in lines)
    assert lines[0]["ts"] <= lines[-1]["ts"]
    client.export_logs(name, tmp_path / "a.csv", format="csv")
    with open(tmp_path / "a.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 43 and json.loads(rows[0]["feedback"])["label"] == 1
    client.export_logs(name, tmp_path / "a.parquet", format="parquet", status=200)
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.num_rows == 40
    assert set(table.column("version").to_pylist()) == {1, 2}


def test_sampling_cap_and_redaction_of_stored_payloads(client, unique_name):
    def profile(user):
        return {"name": user["name"], "score": len(user["name"])}

    client.deploy(profile, unique_name)
    client.configure(unique_name, log_redact=["name"], log_payload_bytes=200)
    client.predict(unique_name, {"name": "alice", "note": "x" * 10})
    client.predict(unique_name, {"name": "bob", "note": "y" * 500})
    rows = wait_logged(client, unique_name, 2)
    newest, oldest = rows
    assert "alice" not in oldest["input"] and "[redacted]" in oldest["input"]
    assert "[redacted]" in oldest["output"] and '"score":5' in oldest["output"]
    assert "truncated" in newest["input"]
    client.configure(unique_name, log_sample_rate=0.0)
    client.predict(unique_name, {"name": "carol"})
    rows = wait_logged(client, unique_name, 3)
    assert rows[0]["input"] is None and rows[0]["status"] == 200
    with pytest.raises(BadRequest, match="from 0 to 1"):
        client.configure(unique_name, log_sample_rate=2)
