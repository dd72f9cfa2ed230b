"""Modelbit's shapes and keywords through champion's own client and raw HTTP."""

from __future__ import annotations

import time
import warnings

import pandas as pd
import pytest

from champion.errors import InvalidInput, ModelTimeout, NotFound


def add(a, b):
    return a + b


def napper(seconds):
    time.sleep(seconds)
    return seconds


def frame_score(df):
    return df["x"] * 10 + df["y"]  # a Series: one output per row


def explode(x):
    raise ValueError(f"bad input {x}")


def test_deploy_accepts_modelbits_keywords_warning_for_each_it_ignores(client, unique_name):
    with pytest.warns(UserWarning) as caught:
        v = client.deploy(add, unique_name, system_packages=["libgomp1"], require_gpu="T4",
                          setup="load", tags=["team-a"], skip_extra_files_dependencies=True,
                          snowflake_max_rows=None)
    messages = [str(w.message) for w in caught]
    assert [m.split("=")[0] for m in messages] == [
        "deploy(): system_packages", "deploy(): require_gpu", "deploy(): setup"]
    assert all(m in " ".join(v.warnings) for m in messages)
    assert client.version(unique_name, 1)["tags"] == ["team-a"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'python_pakages'"):
        client.deploy(add, unique_name, python_pakages=["x==1"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.deploy(add, unique_name, require_gpu=False)  # a default is not "used"


def test_get_inference_takes_modelbits_keywords_and_chunks_large_batches(client, unique_name):
    client.deploy(add, unique_name)
    rows = [[i, i, 100] for i in range(23)]
    answer = client.get_inference(unique_name, rows, batch_size=5, batch_concurrency=2,
                                  region="us-east-1", workspace="acme", branch="main",
                                  version="latest", api_key=client.token)
    assert answer["data"] == [[i, i + 100] for i in range(23)]
    assert len(answer["request_ids"]) == 5 and answer["variant"] == f"{unique_name}:1"
    assert client.get_inference(unique_name, rows[:3])["data"] == [[0, 100], [1, 101],
                                                                   [2, 102]]
    with pytest.raises(NotFound, match="no branch 'dev'"):
        client.get_inference(unique_name, [1, 2], branch="dev")


def test_timeout_seconds_is_a_per_call_timeout_capped_by_the_deployments(client, unique_name):
    client.deploy(napper, unique_name, timeout=5)
    started = time.perf_counter()
    with pytest.raises(ModelTimeout):
        client.get_inference(unique_name, 3, timeout_seconds=0.5)
    assert time.perf_counter() - started < 2.5
    assert client.predict(unique_name, 0.1, timeout_seconds=60) == 0.1  # capped at 5, fine
    with pytest.raises(InvalidInput, match="'links' is not supported"):
        client.get_inference(unique_name, 0.1, response_format="links")


def test_dataframe_mode_calls_the_function_once_per_batch(client, unique_name):
    example = pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]})
    client.deploy(frame_score, unique_name, dataframe_mode=True, example_dataframe=example)
    info = client.version(unique_name, 1)
    assert info["dataframe_columns"] == [
        {"name": "x", "dtype": "int64", "example": "1"},
        {"name": "y", "dtype": "float64", "example": "0.5"}]
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 0.25, 0.0]}, index=["a", "b", "c"])
    assert client.predict(unique_name, frame) == [["a", 10.5], ["b", 20.25], ["c", 30.0]]
    assert client.predict(unique_name, {"x": 4, "y": 1}) == 41.0
    with pytest.raises(InvalidInput, match="DataFrame mode"):
        client.predict(unique_name, [[1, [4, 1]]])
    with pytest.raises(Exception, match="exactly one parameter"):
        client.deploy(add, unique_name, dataframe_mode=True, example_dataframe=example)


def test_the_modelbit_route_answers_modelbits_error_body(server, client, unique_name):
    client.deploy(explode, unique_name)
    with server.http() as http:
        r = http.post(f"/v1/{unique_name}/main/latest", json={"data": 3})
        assert r.status_code == 422
        body = r.json()
        assert body["error"] == "ValueError: bad input 3"
        assert body["champion_error"]["type"] == "model_error"
        assert body["champion_error"]["request_id"] == r.headers["x-champion-request-id"]
        r = http.post(f"/v1/{unique_name}/latest", json={"data": 3})  # champion's own
        assert r.status_code == 500
        assert r.json()["error"]["type"] == "model_error"
        r = http.post(f"/v1/{unique_name}/feature~x/latest", json={"data": 3})
        assert r.status_code == 404
        assert "no branch 'feature/x'" in r.json()["error"]
        r = http.post("/v1/no_such_deployment/main/1", json={"data": 3})
        assert (r.status_code, r.json()["champion_error"]["type"]) == (404, "not_found")
    deadline = time.monotonic() + 10
    while len(logged := client.logs(unique_name, limit=5)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the request log is written in batches
    assert [e["status"] for e in logged] == [500, 500]  # it counts the model's failure
