"""From ``{"data": ...}`` to calls: server/shapes.py, pure, no server."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from champion.capture import capture
from champion.errors import InvalidInput
from champion.server.shapes import bind, calls_for, is_batch


def sig(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """The signature as the manifest carries it."""
    return [
        {"name": p.name, "kind": p.kind.name, "default": p.default is not p.empty}
        for p in inspect.signature(fn).parameters.values()
    ]


def run(fn: Callable[..., Any], data: Any) -> Any:
    """Bind like the server, then call like the worker."""
    args, kwargs = bind(data, sig(fn))
    return fn(*args, **kwargs)


def no_params():
    return "none"


def one(x):
    return x


def three(a, b, c=1):
    return [a, b, c]


def one_required(a, b=2):
    return [a, b]


def star_args(*args):
    return list(args)


def star_kwargs(**kwargs):
    return kwargs


def pos_only(a, b=2, /, c=3):
    return [a, b, c]


def kw_only(a, *, k):
    return [a, k]


def only_kw(*, k):
    return k


def only_kws(*, a, b):
    return [a, b]


def mixed(a, *rest, **extra):
    return [a, list(rest), extra]


def test_the_signature_helper_matches_what_capture_records():
    for fn in (three, pos_only, kw_only, mixed):
        assert capture(fn).signature == sig(fn)


@pytest.mark.parametrize(
    "fn, data, expected",
    [
        (no_params, None, "none"),
        (one, 5, 5),
        (one, [1, 2], [1, 2]),  # one parameter: the data is that parameter, list or not
        (one, {"a": 1}, {"a": 1}),
        (one, None, None),
        (three, [1, 2], [1, 2, 1]),
        (three, [1, 2, 3], [1, 2, 3]),
        (three, {"a": 1, "b": 2}, [1, 2, 1]),
        (three, {"c": 3, "b": 2, "a": 1}, [1, 2, 3]),
        (one_required, 5, [5, 2]),  # one required parameter: a scalar is that parameter
        (one_required, "s", ["s", 2]),
        (one_required, [1, 3], [1, 3]),
        (one_required, {"a": 1}, [1, 2]),
        (star_args, [1, 2, 3], [1, 2, 3]),
        (star_args, 7, [7]),
        (star_kwargs, {"p": 1, "q": 2}, {"p": 1, "q": 2}),
        (pos_only, {"a": 1}, [1, 2, 3]),
        (pos_only, {"a": 1, "b": 5, "c": 6}, [1, 5, 6]),
        (pos_only, [1, 5, 6], [1, 5, 6]),
        (kw_only, {"a": 1, "k": 2}, [1, 2]),
        (only_kw, 5, 5),  # a single keyword-only parameter still takes the data
        (only_kw, {"k": 1}, {"k": 1}),
        (only_kws, {"a": 1, "b": 2}, [1, 2]),
        (mixed, [1, 2, 3], [1, [2, 3], {}]),
        (mixed, {"a": 1, "z": 2}, [1, [], {"z": 2}]),
    ],
)
def test_data_binds_to_the_parameters(fn, data, expected):
    assert run(fn, data) == expected


@pytest.mark.parametrize(
    "fn, data, parameter, words",
    [
        (no_params, 1, None, "takes no parameters"),
        (three, {"a": 1}, "b", "missing parameter 'b'"),
        (three, {"b": 1}, "a", "missing parameter 'a'"),
        (three, [1], "b", "missing parameter 'b'"),
        (three, [], "a", "missing parameter 'a'"),
        (three, {"a": 1, "b": 2, "zz": 3}, "zz", "unknown parameter 'zz'"),
        (three, [1, 2, 3, 4], None, "too many arguments"),
        (three, 5, "a", "several parameters (a, b, c)"),
        (three, None, "a", "several parameters"),
        (one_required, [1, 2, 3], None, "at most 2 (a, b), 3 given"),
        (kw_only, [1], "k", "missing parameter 'k'"),
        (kw_only, {"a": 1}, "k", "missing parameter 'k'"),
        (only_kws, [1, 2], "a", "pass the arguments as an object"),
        (pos_only, {"b": 5}, "a", "missing parameter 'a'"),
        (pos_only, {"a": 1, "c": 2, "zz": 0}, "zz", "unknown parameter 'zz'"),
    ],
)
def test_data_that_does_not_fit_names_the_parameter(fn, data, parameter, words):
    with pytest.raises(InvalidInput) as info:
        bind(data, sig(fn))
    assert words in info.value.message
    assert info.value.detail.get("parameter") == parameter
    assert info.value.status_code == 400


def test_positional_only_parameter_given_without_the_one_before_it_is_refused():
    # pos_only(a, b=2, /, c=3): {"a": 1} binds a; a 'b' after a missing earlier one cannot.
    def two_defaults(a=1, b=2, /):
        return [a, b]

    with pytest.raises(InvalidInput, match="'b'") as info:
        bind({"b": 5}, sig(two_defaults))
    assert info.value.detail["parameter"] == "b"
    assert run(two_defaults, {"a": 5}) == [5, 2]


@pytest.mark.parametrize(
    "body, batch",
    [
        ({"data": [[1, "x"], [2, "y"]]}, True),
        ({"data": [["a", 1]]}, True),
        ({"data": [[1, 2, 3]]}, False),  # rows have two elements
        ({"data": [[1.5, 2]]}, False),  # ids are int or str
        ({"data": [[True, 2]]}, False),  # and not bool
        ({"data": [1, 2]}, False),
        ({"data": []}, False),
        ({"data": {"a": 1}}, False),
        ({"data": "s"}, False),
        ({"data": [[1, "x"]], "batch": False}, False),
        ({"data": [1, 2], "batch": True}, True),
    ],
)
def test_a_batch_is_recognised_by_its_rows_or_said_outright(body, batch):
    assert is_batch(body) is batch


def test_batch_flag_must_be_a_boolean():
    with pytest.raises(InvalidInput, match="'batch' must be true or false"):
        is_batch({"data": [], "batch": "yes"})
    with pytest.raises(InvalidInput):
        is_batch({"data": [], "batch": 1})


def test_a_single_request_is_one_call_without_ids():
    assert calls_for({"data": [1, 2]}, sig(three)) == ([([1, 2], {})], None)
    assert calls_for({"data": [[1, 2]], "batch": False}, sig(one)) == (
        [([[[1, 2]]], {})], None)


def test_a_batch_is_one_call_per_row_with_its_id():
    calls, ids = calls_for({"data": [[1, [1, 2]], ["b", {"a": 3, "b": 4}]]}, sig(three))
    assert ids == [1, "b"]
    assert calls == [([1, 2], {}), ([], {"a": 3, "b": 4})]


@pytest.mark.parametrize(
    "data, row",
    [
        ([[1, "x"], [2]], 1),
        ([[1, "x"], "y"], 1),
        ([[1, "x"], [2, "y"], [None, "z"]], 2),
        ([[1, "x"], [2, "y", 3]], 1),
    ],
)
def test_a_row_that_is_not_id_and_value_is_named_by_index(data, row):
    with pytest.raises(InvalidInput, match=f"batch row {row} is not \\[id, x\\]") as info:
        calls_for({"data": data}, sig(one))
    assert info.value.detail == {"row": row}


def test_a_row_whose_value_does_not_fit_names_row_and_parameter():
    with pytest.raises(InvalidInput, match="batch row 1: missing parameter 'b'") as info:
        calls_for({"data": [[1, [1, 2]], [2, [1]]]}, sig(three))
    assert info.value.detail == {"row": 1, "parameter": "b"}


@pytest.mark.parametrize("data", [[], "s", {"a": 1}])
def test_a_forced_batch_must_be_a_non_empty_list(data):
    with pytest.raises(InvalidInput, match="non-empty list"):
        calls_for({"data": data, "batch": True}, sig(one))


# ---------------------------------------------------------------------- Modelbit's rows


def add(a, b):
    return a + b


def test_modelbit_multi_argument_rows_bind_each_value_to_a_parameter():
    # The bug this pins: two rows to add(a, b) were read as the two arguments, answering
    # [1, 10, 11, 2, 20, 21] with a 200.
    calls, ids = calls_for({"data": [[1, 10, 11], [2, 20, 21]]}, sig(add))
    assert ids == [1, 2]
    assert [add(*a, **k) for a, k in calls] == [21, 41]


@pytest.mark.parametrize(
    "fn, data, expected",
    [
        (three, [[1, 5, 6]], [[5, 6, 1]]),  # a default fills the rest
        (three, [["a", 5, 6, 7]], [[5, 6, 7]]),
        (add, [[1, 10, 11], [2, [20, 21]]], [21, 41]),  # rows may mix the two readings
        (add, [[1, {"a": 1, "b": 2}]], [3]),
        (star_args, [[1, 2, 3]], [[2, 3]]),
        (mixed, [[1, 2, 3, 4]], [[2, [3, 4], {}]]),
    ],
)
def test_rows_are_read_as_modelbit_reads_them(fn, data, expected):
    calls, ids = calls_for({"data": data}, sig(fn))
    assert ids == [row[0] for row in data]
    assert [fn(*a, **k) for a, k in calls] == expected


def test_long_rows_are_one_input_for_a_function_of_one_parameter():
    # one(x) cannot take [id, a, b]: the list is its single input, as before.
    assert is_batch({"data": [[1, 2, 3]]}, sig(one)) is False
    assert calls_for({"data": [[1, 2, 3]]}, sig(one)) == ([([[[1, 2, 3]]], {})], None)
    assert is_batch({"data": [[1, 2, 3]]}, sig(three)) is True


@pytest.mark.parametrize(
    "fn, data, row, words",
    [
        (add, [[1, 2, 3, 4]], 0, "too many arguments"),
        (add, [[1, 10, 11], [2, 20, 21, 22]], 1, "too many arguments"),
        (add, [[1, 10, 11], [2, 20]], 1, "several parameters"),
        (add, [[1, 10, 11], [2.5, 20, 21]], 1, "is not [id, x]"),
        (add, [[1, 10, 11], "x"], 1, "is not [id, x]"),
        (one, [[1, "x"], [2, "y", 3]], 1, "takes one positional argument"),
        (kw_only, [[1, {"a": 1, "k": 2}], [2, 3, 4]], 1, "takes one positional argument"),
    ],
)
def test_rows_that_fit_no_reading_are_refused_never_guessed(fn, data, row, words):
    with pytest.raises(InvalidInput) as info:
        calls_for({"data": data}, sig(fn))
    assert words in info.value.message
    assert info.value.detail["row"] == row
    assert info.value.status_code == 400


def test_batch_false_still_sends_rows_as_the_arguments():
    assert calls_for({"data": [[1, 10, 11], [2, 20, 21]], "batch": False}, sig(add)) == (
        [([[1, 10, 11], [2, 20, 21]], {})], None)


# ---------------------------------------------------------------------- DataFrame mode

COLUMNS = [{"name": "x", "dtype": "int64"}, {"name": "y", "dtype": "float64"}]


def test_dataframe_mode_takes_rows_of_column_values():
    from champion.server.shapes import frame_calls_for

    calls, ids = frame_calls_for({"data": [[1, {"x": 1, "y": 2.0}], ["b", {"x": 3}]]},
                                 COLUMNS)
    assert ids == [1, "b"]
    assert calls == [([{"x": 1, "y": 2.0}], {}), ([{"x": 3}], {})]
    assert frame_calls_for({"data": {"x": 1, "y": 2}}, COLUMNS) == (
        [([{"x": 1, "y": 2}], {})], None)


@pytest.mark.parametrize("data, words", [
    ([[1, [1, 2]]], "batch row 0 is not [id, {column: value}]"),
    ([], "DataFrame mode"),
    (5, "DataFrame mode"),
])
def test_dataframe_mode_refuses_other_shapes(data, words):
    from champion.server.shapes import frame_calls_for

    with pytest.raises(InvalidInput) as info:
        frame_calls_for({"data": data}, COLUMNS)
    assert words in info.value.message


# ---------------------------------------------------------------------- request options


def test_timeout_seconds_is_capped_by_the_deployment_timeout():
    from champion.server.shapes import call_options

    assert call_options({"data": 1}, 30.0).timeout is None
    assert call_options({"data": 1, "timeout_seconds": 2}, 30.0).timeout == 2.0
    assert call_options({"data": 1, "timeout_seconds": 300}, 30.0).timeout == 30.0


@pytest.mark.parametrize("body, words", [
    ({"timeout_seconds": 0}, "positive number"),
    ({"timeout_seconds": -1}, "positive number"),
    ({"timeout_seconds": "5"}, "positive number"),
    ({"timeout_seconds": True}, "positive number"),
    ({"response_format": "links"}, "'links' is not supported"),
    ({"response_format": "csv"}, "must be \"json\""),
    ({"response_webhook": "https://example.test/hook"}, "not supported"),
])
def test_unsupported_request_options_are_a_400(body, words):
    from champion.server.shapes import call_options

    with pytest.raises(InvalidInput) as info:
        call_options({"data": 1, **body}, 30.0)
    assert words in info.value.message
    assert call_options({"data": 1, "response_format": "json"}, 30.0).timeout is None


def test_batch_rows_of_a_one_parameter_function_bind_as_bind_does() -> None:
    # calls_for takes a shortcut for f(x); each row must still give bind's call, and a bad
    # row the same error
    def f(x):  # type: ignore[no-untyped-def]
        return x

    def g(x=3):  # type: ignore[no-untyped-def]
        return x

    rows = [[0, [1.0, 2.0]], ["a", {"k": 1}], [2, None], [3, [[1, 2], [3, 4]]], [4, "s"]]
    for fn in (f, g):
        calls, ids = calls_for({"data": rows}, sig(fn))
        assert ids == [0, "a", 2, 3, 4]
        assert calls == [bind(r[1], sig(fn)) for r in rows]
    for bad, where in (([[0, 1], [True, 2]], "batch row 1"), ([[0, 1], [1, 2, 3]], "batch row 1"),
                       ([[0, 1], 5], "batch row 1")):
        with pytest.raises(InvalidInput, match=where):
            calls_for({"data": bad}, sig(f))
