"""The feedback API through the real server."""

from __future__ import annotations

import time

import pytest

from champion.errors import BadRequest, NotFound, PayloadTooLarge


def echo(x):
    return x


@pytest.fixture()
def deployed(client, unique_name):
    client.deploy(echo, unique_name)
    return unique_name


def _rid(client, name, x=1, unit=None):
    return client.get_inference(name, x, unit=unit)["request_id"]


def test_each_feedback_form_is_stored_and_retries_do_not_count_twice(client, deployed):
    rid = _rid(client, deployed)
    assert client.feedback(deployed, rid, reward=1)["accepted"] == 1
    assert client.feedback(deployed, rid, metric="revenue", value=9.5)["accepted"] == 1
    assert client.feedback(deployed, rid, label=1)["accepted"] == 1
    retry = client.feedback(deployed, rid, reward=1)
    assert retry == {"accepted": 0, "duplicates": 1}
    unit = client.feedback(deployed, unit="user-7", metric="revenue", value=3, event_id="e1")
    assert unit["accepted"] == 1
    assert client.feedback(deployed, unit="user-7", metric="revenue", value=3,
                           event_id="e1")["duplicates"] == 1

    rows = client.logs(deployed, feedback=True)
    for _ in range(40):
        if rows:
            break
        time.sleep(0.05)
        rows = client.logs(deployed, feedback=True)
    assert rows[0]["request_id"] == rid
    assert rows[0]["feedback"] == {"reward": 1.0, "revenue": 9.5, "label": 1}


def test_feedback_before_its_request_is_logged_is_kept(server, deployed, client):
    # Answer and feedback back to back: the request event may still be queued.
    rid = _rid(client, deployed, 5)
    assert client.feedback(deployed, rid, reward=0.5)["accepted"] == 1
    for _ in range(40):
        rows = client.logs(deployed, feedback=True)
        if rows and rows[0]["feedback"]:
            break
        time.sleep(0.05)
    assert rows[0]["feedback"]["reward"] == 0.5


def test_a_request_id_this_server_never_issued_is_rejected(client, deployed):
    rid = _rid(client, deployed)
    forged = rid[:-1] + ("0" if rid[-1] != "0" else "1")
    with pytest.raises(BadRequest, match="not issued by this server"):
        client.feedback(deployed, forged, reward=1)
    with pytest.raises(BadRequest, match="not issued"):
        client.feedback(deployed, "made-up", reward=1)


def test_bad_feedback_gets_clear_errors(client, deployed, server):
    rid = _rid(client, deployed)
    with pytest.raises(BadRequest, match="request_id"):
        client.feedback(deployed, reward=1)
    with pytest.raises(BadRequest, match="must be a number"):
        client.feedback(deployed, rid, metric="revenue", value="lots")
    with pytest.raises(NotFound, match="no-such"):
        client.feedback("no-such", rid, reward=1)
    with server.http() as http:
        r = http.post(f"/v1/{deployed}/feedback", json={"request_id": rid})
        assert r.status_code == 400 and r.json()["error"]["type"] == "bad_request"
        r = http.post(f"/v1/{deployed}/feedback", content=b"{oops",
                      headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"


def test_a_batch_stores_the_good_items_and_reports_the_bad(client, deployed):
    rids = [_rid(client, deployed, i) for i in range(3)]
    items = [{"request_id": rids[0], "reward": 1},
             {"request_id": rids[1], "metric": "revenue", "value": "x"},
             {"reward": 1},
             {"request_id": rids[2], "label": "cat"},
             {"request_id": rids[0], "reward": 1}]
    r = client.feedback(deployed, items=items)
    assert r["accepted"] == 2 and r["duplicates"] == 1 and r["rejected"] == 2
    assert [e["index"] for e in r["errors"]] == [1, 2]
    assert r["duplicate_items"] == [4]


def test_an_atomic_batch_with_a_bad_item_stores_nothing(client, deployed):
    rid = _rid(client, deployed)
    with pytest.raises(BadRequest, match="nothing was stored") as info:
        client.feedback(deployed, items=[{"request_id": rid, "reward": 1}, {"reward": 2}],
                        atomic=True)
    assert info.value.detail["errors"][0]["index"] == 1
    assert client.feedback(deployed, rid, reward=1)["accepted"] == 1


def test_a_batch_over_the_limit_is_refused(client, deployed):
    rid = _rid(client, deployed)
    items = [{"request_id": rid, "metric": f"m{i}", "value": 1} for i in range(10_001)]
    with pytest.raises(PayloadTooLarge, match="10000"):
        client.feedback(deployed, items=items)


def test_ten_thousand_items_in_one_call(client, deployed):
    rids = [_rid(client, deployed, i) for i in range(20)]
    items = [{"request_id": rids[i % 20], "metric": f"m{i // 20}", "value": i}
             for i in range(10_000)]
    r = client.feedback(deployed, items=items)
    assert r["accepted"] == 10_000 and r["rejected"] == 0
    assert client.feedback(deployed, items=items)["duplicates"] == 10_000
