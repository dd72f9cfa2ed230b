"""The one JSON error shape, and the client's way back from it to the same exception."""

from __future__ import annotations

import orjson
import pytest

from champion import errors
from champion.errors import (
    ALL_ERRORS,
    BadRequest,
    ChampionError,
    DeployError,
    InvalidInput,
    InvalidJSON,
    MethodNotAllowed,
    ModelError,
    ModelTimeout,
    NotFound,
    Unavailable,
    WorkerCrashed,
    error_from_response,
)
from champion.server.http import error_response

# The tree as the API documents it: class -> (status, type). Changing one is a breaking change.
PINNED = {
    "ChampionError": (500, "internal_error"),
    "BadRequest": (400, "bad_request"),
    "InvalidJSON": (400, "invalid_json"),
    "InvalidInput": (400, "invalid_input"),
    "DeployError": (400, "deploy_error"),
    "Unauthorized": (401, "unauthorized"),
    "Forbidden": (403, "forbidden"),
    "NotFound": (404, "not_found"),
    "MethodNotAllowed": (405, "method_not_allowed"),
    "Conflict": (409, "conflict"),
    "PayloadTooLarge": (413, "payload_too_large"),
    "UnsupportedMediaType": (415, "unsupported_media_type"),
    "TooManyRequests": (429, "rate_limited"),
    "ModelError": (500, "model_error"),
    "WorkerCrashed": (502, "worker_crashed"),
    "AnswerTooLarge": (502, "answer_too_large"),
    "OutOfMemory": (502, "out_of_memory"),
    "Unavailable": (503, "unavailable"),
    "Unreachable": (503, "unreachable"),  # client side: no server answered
    "ModelTimeout": (504, "timeout"),
    "InsufficientStorage": (507, "insufficient_storage"),
}


def test_every_error_class_has_its_pinned_status_and_type():
    assert {cls.__name__: (cls.status_code, cls.type_name) for cls in ALL_ERRORS} == PINNED


def test_every_error_class_is_listed_and_in_the_docstring_tree():
    defined = {
        obj for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, ChampionError)
    }
    assert defined == set(ALL_ERRORS)
    doc = errors.__doc__ or ""
    for cls in ALL_ERRORS:
        assert f"{cls.__name__} ({cls.status_code})" in doc


def test_type_names_are_unique():
    names = [cls.type_name for cls in ALL_ERRORS]
    assert len(names) == len(set(names))


def test_the_shape_is_type_and_message_then_request_id_and_detail():
    assert NotFound("no deployment named 'x'").to_dict() == {
        "error": {"type": "not_found", "message": "no deployment named 'x'"}
    }
    exc = InvalidInput("missing parameter 'b'", request_id="r1", parameter="b")
    assert exc.to_dict() == {
        "error": {"type": "invalid_input", "message": "missing parameter 'b'",
                  "request_id": "r1", "parameter": "b"}
    }
    assert list(exc.to_dict()["error"])[:3] == ["type", "message", "request_id"]


def test_detail_cannot_overwrite_the_type():
    err = BadRequest("the message", request_id="r1", type="x").to_dict()["error"]
    assert err == {"type": "bad_request", "message": "the message", "request_id": "r1"}


def test_error_response_is_the_shape_with_its_status_and_request_id_header():
    resp = error_response(ModelTimeout("too slow", request_id="rid-1"))
    assert resp.status_code == 504
    assert resp.media_type == "application/json"
    assert orjson.loads(resp.body) == {
        "error": {"type": "timeout", "message": "too slow", "request_id": "rid-1"}
    }
    assert resp.headers["x-champion-request-id"] == "rid-1"
    assert "x-champion-request-id" not in error_response(NotFound("x")).headers


def test_error_response_keeps_extra_headers():
    resp = error_response(MethodNotAllowed("no"), {"Allow": "POST"})
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_client_maps_each_error_back_to_its_class(cls):
    sent = cls("something went wrong", request_id="req-9", parameter="b", row=2)
    got = error_from_response(cls.status_code, orjson.loads(orjson.dumps(sent.to_dict())))
    assert type(got) is cls
    assert got.message == "something went wrong"
    assert str(got) == "something went wrong"
    assert got.request_id == "req-9"
    assert got.detail == {"parameter": "b", "row": 2}
    assert got.to_dict() == sent.to_dict()


def test_client_maps_errors_to_subclasses_of_the_generic_ones():
    assert isinstance(error_from_response(400, InvalidJSON("x").to_dict()), BadRequest)
    assert isinstance(error_from_response(400, DeployError("x").to_dict()), BadRequest)
    assert isinstance(error_from_response(500, ModelError("x").to_dict()), ChampionError)


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (400, {"error": {"type": "not_found", "message": "m"}}, BadRequest),  # status wins
        (400, {"error": {"type": "no_such_type", "message": "m"}}, BadRequest),
        (404, {"error": {"type": "invalid_json", "message": "m"}}, NotFound),
        (502, {"error": {"message": "m"}}, WorkerCrashed),
        (503, {"error": {"type": "unavailable", "message": "m"}}, Unavailable),
        (418, {"error": {"type": "teapot", "message": "m"}}, ChampionError),
    ],
)
def test_client_falls_back_to_the_class_of_the_status(status, body, cls):
    got = error_from_response(status, body)
    assert type(got) is cls
    assert got.message == "m"


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (502, "<html>Bad Gateway</html>", WorkerCrashed),
        (503, None, Unavailable),
        (500, {"detail": "not our shape"}, ChampionError),
        (404, {"error": "a string"}, NotFound),
        (599, "", ChampionError),
    ],
)
def test_client_copes_with_bodies_not_in_the_shape(status, body, cls):
    got = error_from_response(status, body)
    assert type(got) is cls
    assert got.message.startswith(f"HTTP {status}: ")
    assert got.request_id is None


def test_client_reads_a_null_or_missing_message_as_empty():
    assert error_from_response(404, {"error": {"type": "not_found"}}).message == ""
    assert error_from_response(404, {"error": {"type": "not_found", "message": None}}
                               ).message == ""
