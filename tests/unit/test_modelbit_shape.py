"""The Modelbit-compatible route's error body and statuses, and the raw token."""

from __future__ import annotations

import orjson
import pytest
from starlette.requests import Request

from champion.errors import ModelError, ModelTimeout, NotFound, Unavailable, error_from_response
from champion.server.http import bearer_token, error_response
from champion.server.modelbit import MODEL_ERROR_STATUS, to_modelbit

# Modelbit's client (0.44.3) retries these five times with backoff.
MODELBIT_RETRIES = {429, 500, 502, 503, 504}


def test_the_error_is_a_string_with_champions_error_beside_it():
    resp = to_modelbit(error_response(NotFound("no deployment named 'x'", request_id="r1")))
    assert resp.status_code == 404
    assert orjson.loads(resp.body) == {
        "error": "no deployment named 'x'",
        "champion_error": {"type": "not_found", "message": "no deployment named 'x'",
                           "request_id": "r1"},
    }
    assert resp.headers["x-champion-request-id"] == "r1"


def test_a_models_exception_answers_a_status_modelbits_client_does_not_retry():
    resp = to_modelbit(error_response(ModelError("ValueError: bad", exception="ValueError")))
    assert resp.status_code == MODEL_ERROR_STATUS == 422
    assert MODEL_ERROR_STATUS not in MODELBIT_RETRIES
    assert orjson.loads(resp.body)["error"] == "ValueError: bad"


@pytest.mark.parametrize("exc", [ModelTimeout("slow"), Unavailable("building")])
def test_transient_failures_keep_their_status(exc):
    assert to_modelbit(error_response(exc)).status_code == exc.status_code


def test_the_client_reads_champions_error_from_the_modelbit_body():
    body = orjson.loads(to_modelbit(error_response(NotFound("nope", request_id="r"))).body)
    got = error_from_response(404, body)
    assert type(got) is NotFound and got.message == "nope" and got.request_id == "r"


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "method": "POST", "path": "/"})


@pytest.mark.parametrize("headers, token", [
    ({"Authorization": "Bearer abc"}, "abc"),
    ({"Authorization": "bearer  abc "}, "abc"),
    ({"Authorization": "mi123:ms456"}, "mi123:ms456"),  # Modelbit's raw API key
    ({"Authorization": "Basic xyz"}, None),
    ({"X-Champion-Token": "t"}, "t"),
    ({}, None),
])
def test_the_token_with_or_without_bearer(headers, token):
    assert bearer_token(request_with(headers)) == token
