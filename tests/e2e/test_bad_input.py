"""Bad input through the real server: one JSON error shape, the right status, still serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

JSON = {"content-type": "application/json"}
LIMIT = 1024 * 1024  # the session server runs with --max-body-bytes 1 MiB


def three_params(a, b, c=1):
    return [a, b, c]


def echo(x):
    return x


@pytest.fixture()
def http(server) -> Iterator[httpx.Client]:
    with server.http() as h:
        yield h


@pytest.fixture()
def deployed(client, unique_name) -> str:
    client.deploy(three_params, unique_name)
    return unique_name


def error_of(resp: httpx.Response, status: int, type_name: str | None = None) -> dict[str, Any]:
    """The one error shape, checked; returns its ``error`` object."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["type"], str) and err["type"]
    assert isinstance(err["message"], str) and err["message"]
    if type_name is not None:
        assert err["type"] == type_name, err
    return dict(err)


def assert_still_serving(http: httpx.Client, name: str) -> None:
    resp = http.post(f"/v1/{name}", json={"data": [1, 2]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == [1, 2, 1]


def test_malformed_json_is_400_invalid_json(http, deployed):
    resp = http.post(f"/v1/{deployed}", content=b'{"data": [1, 2', headers=JSON)
    err = error_of(resp, 400, "invalid_json")
    assert "not valid JSON" in err["message"]
    assert err["request_id"] == resp.headers["x-champion-request-id"]
    assert_still_serving(http, deployed)


def test_empty_body_is_400_invalid_json(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}", content=b"", headers=JSON), 400, "invalid_json")
    assert "empty" in err["message"]
    assert_still_serving(http, deployed)


def test_body_without_data_field_is_400_naming_data(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}", json={"x": 1}), 400)
    assert "'data'" in err["message"]
    assert_still_serving(http, deployed)


def test_json_array_body_is_400_asking_for_an_object(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}", json=[1, 2]), 400)
    assert "object" in err["message"]
    assert_still_serving(http, deployed)


def test_batch_row_that_is_not_id_and_value_is_400_naming_its_index(http, deployed):
    resp = http.post(f"/v1/{deployed}", json={"data": [[1, [1, 2]], [2, [3, 4]], [3]]})
    err = error_of(resp, 400, "invalid_input")
    assert "row 2" in err["message"]
    assert err["row"] == 2
    resp = http.post(f"/v1/{deployed}", json={"data": [[1, [1, 2]], "oops"]})
    assert error_of(resp, 400)["row"] == 1
    assert_still_serving(http, deployed)


def test_batch_row_whose_value_does_not_fit_names_row_and_parameter(http, deployed):
    resp = http.post(f"/v1/{deployed}", json={"data": [[1, [1, 2]], [2, {"a": 1}]]})
    err = error_of(resp, 400, "invalid_input")
    assert "row 1" in err["message"] and "'b'" in err["message"]
    assert (err["row"], err["parameter"]) == (1, "b")


def test_batch_flag_must_be_boolean(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}", json={"data": [1, 2], "batch": "yes"}), 400)
    assert "'batch'" in err["message"]


def test_unknown_deployment_is_404_naming_it(http, deployed, unique_name):
    missing = unique_name + "x"
    err = error_of(http.post(f"/v1/{missing}", json={"data": 1}), 404, "not_found")
    assert missing in err["message"]
    assert_still_serving(http, deployed)


@pytest.mark.parametrize("ref, named", [("7", "version 7"), ("nosuchalias", "'nosuchalias'")])
def test_unknown_version_or_alias_is_404_naming_it(http, deployed, ref, named):
    err = error_of(http.post(f"/v1/{deployed}/{ref}", json={"data": [1, 2]}), 404, "not_found")
    assert named in err["message"] and deployed in err["message"]
    assert_still_serving(http, deployed)


def test_non_ascii_digit_version_is_404_not_a_server_error(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}/\u00b2", json={"data": [1, 2]}), 404, "not_found")
    assert deployed in err["message"]


def test_body_over_the_limit_with_content_length_is_413(http, deployed):
    body = b'{"data": "' + b"x" * LIMIT + b'"}'
    resp = http.post(f"/v1/{deployed}", content=body, headers=JSON)
    assert int(resp.request.headers["content-length"]) > LIMIT
    err = error_of(resp, 413, "payload_too_large")
    assert str(LIMIT) in err["message"]
    assert_still_serving(http, deployed)


def test_body_over_the_limit_with_chunked_encoding_is_413(http, deployed):
    def chunks() -> Iterator[bytes]:
        yield b'{"data": "'
        for _ in range(20):
            yield b"x" * (64 * 1024)
        yield b'"}'

    resp = http.post(f"/v1/{deployed}", content=chunks(), headers=JSON)
    assert resp.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in resp.request.headers
    err = error_of(resp, 413, "payload_too_large")
    assert str(LIMIT) in err["message"]
    assert_still_serving(http, deployed)


def test_body_just_under_the_limit_is_accepted(http, client, unique_name):
    client.deploy(echo, unique_name)
    text = "y" * (LIMIT - 100)
    resp = http.post(f"/v1/{unique_name}", json={"data": text})
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["data"] == text


def test_wrong_content_type_is_415(http, deployed):
    resp = http.post(f"/v1/{deployed}", content=b'{"data": [1, 2]}',
                     headers={"content-type": "text/plain"})
    err = error_of(resp, 415, "unsupported_media_type")
    assert "application/json" in err["message"] and "text/plain" in err["message"]
    assert_still_serving(http, deployed)


def test_json_content_type_with_charset_is_accepted(http, deployed):
    resp = http.post(f"/v1/{deployed}", content=b'{"data": [1, 2]}',
                     headers={"content-type": "application/json; charset=utf-8"})
    assert resp.status_code == 200 and resp.json()["data"] == [1, 2, 1]


def test_missing_parameter_is_400_naming_it(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}", json={"data": {"a": 1}}), 400, "invalid_input")
    assert "'b'" in err["message"] and err["parameter"] == "b"
    err = error_of(http.post(f"/v1/{deployed}", json={"data": [1]}), 400, "invalid_input")
    assert "'b'" in err["message"] and err["parameter"] == "b"
    assert_still_serving(http, deployed)


def test_unknown_keyword_is_400_naming_it(http, deployed):
    resp = http.post(f"/v1/{deployed}", json={"data": {"a": 1, "b": 2, "zz": 3}})
    err = error_of(resp, 400, "invalid_input")
    assert "'zz'" in err["message"] and err["parameter"] == "zz"
    assert_still_serving(http, deployed)


def test_too_many_positional_arguments_is_400_naming_the_parameters(http, deployed):
    resp = http.post(f"/v1/{deployed}", json={"data": [1, 2, 3, 4]})
    err = error_of(resp, 400, "invalid_input")
    assert "too many" in err["message"] and "a, b, c" in err["message"]
    assert "4 given" in err["message"]
    assert_still_serving(http, deployed)


def test_scalar_for_a_function_of_several_parameters_is_400(http, deployed):
    err = error_of(http.post(f"/v1/{deployed}", json={"data": 5}), 400, "invalid_input")
    assert "a, b, c" in err["message"]


def test_several_parameters_take_a_list_or_an_object(client, deployed):
    assert client.predict(deployed, [1, 2]) == [1, 2, 1]
    assert client.predict(deployed, [1, 2, 3]) == [1, 2, 3]
    assert client.predict(deployed, {"a": "x", "b": "y"}) == ["x", "y", 1]
    assert client.predict(deployed, {"b": 2, "a": 1, "c": 5}) == [1, 2, 5]


def test_batch_rows_answer_with_their_ids(http, deployed):
    resp = http.post(f"/v1/{deployed}", json={"data": [[1, [1, 2]], ["b", {"a": 3, "b": 4}]]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == [[1, [1, 2, 1]], ["b", [3, 4, 1]]]


def test_batch_of_a_one_parameter_function(client, unique_name):
    client.deploy(echo, unique_name)
    assert client.predict(unique_name, [[1, "x"], [2, "y"]]) == [[1, "x"], [2, "y"]]


def test_batch_false_forces_a_single_call(client, unique_name):
    client.deploy(echo, unique_name)
    rows = [[1, "x"], [2, "y"]]
    assert client.predict(unique_name, rows, batch=False) == rows
    assert client.predict(unique_name, rows, batch=True) == rows  # ids echoed back
    assert client.predict(unique_name, [[1, 2]], batch=False) == [[1, 2]]


def test_unknown_route_is_404_in_the_error_shape(http):
    err = error_of(http.get("/no/such/route"), 404, "not_found")
    assert err["message"]
    err = error_of(http.post("/v1"), 404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(http, deployed):
    resp = http.get(f"/v1/{deployed}")
    err = error_of(resp, 405, "method_not_allowed")
    assert err["message"]
    assert "POST" in resp.headers.get("allow", "")
    assert_still_serving(http, deployed)


def test_version_number_too_large_for_the_store_is_404(http, deployed):
    huge = "9" * 30
    err = error_of(http.post(f"/v1/{deployed}/{huge}", json={"data": [1, 2]}), 404, "not_found")
    assert huge in err["message"]
    assert_still_serving(http, deployed)


def test_data_nested_too_deeply_is_400(http, client, unique_name):
    client.deploy(echo, unique_name)
    for depth, status in [(200, 200), (300, 400), (2000, 400)]:
        body = b'{"data": ' + b"[" * depth + b"]" * depth + b"}"
        resp = http.post(f"/v1/{unique_name}", content=body, headers=JSON)
        assert resp.status_code == status, (depth, resp.text[:300])
        if status == 400:
            assert "nested too deeply" in resp.text or "depth" in resp.text
    assert http.post(f"/v1/{unique_name}", json={"data": 1}).json()["data"] == 1


def keyword_only(*, k):
    return {"k": k}


def test_a_single_keyword_only_parameter_takes_the_data(client, unique_name):
    client.deploy(keyword_only, unique_name)
    assert client.predict(unique_name, 5) == {"k": 5}
    assert client.predict(unique_name, [[1, 2], [2, 3]]) == [[1, {"k": 2}], [2, {"k": 3}]]
