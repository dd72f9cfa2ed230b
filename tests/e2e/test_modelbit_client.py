"""The real ``modelbit`` client (0.44.3) against a champion server, only its host replaced.

Modelbit's code calls ``modelbit.get_inference(...)`` unchanged; ``aim_modelbit_client``
swaps the scheme and host of the URLs it builds (``https://WORKSPACE.REGION.modelbit.com``)
for the champion server's, keeping the path (``/v1/NAME/BRANCH/VERSION``), the body, the
headers and Modelbit's retry policy.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Server

modelbit = pytest.importorskip(
    "modelbit", reason="the real Modelbit client: pip install --no-deps modelbit==0.44.3")
pd = pytest.importorskip("pandas")

from modelbit.error import ModelbitError  # noqa: E402

import champion  # noqa: E402

WHERE = {"workspace": "acme", "region": "us-east-1"}  # what Modelbit users pass


def double(x):
    return x * 2


def add(a, b):
    return a + b


def score(frame):
    return (frame["x"] * 2 + frame["y"]).tolist()


def make_exploder(counter: str):
    def explode(x):
        with open(counter, "a") as f:
            f.write("called\n")
        raise ValueError(f"bad input {x}")

    return explode


@pytest.fixture(scope="module")
def deployed(server, tmp_path_factory):
    counter = tmp_path_factory.mktemp("calls") / "explode.log"
    with server.client() as client:
        client.deploy(double, "mb_double")
        client.deploy(add, "mb_double")  # version 2: /latest is add, "official" stays 1
        client.set_alias("mb_double", "official", 1)
        client.deploy(add, "mb_add")
        example = pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]})
        client.deploy(score, "mb_frame", dataframe_mode=True, example_dataframe=example)
        client.deploy(make_exploder(str(counter)), "mb_explode")
    return counter


@pytest.fixture(autouse=True)
def aimed(request):
    """Each test's Modelbit client talks to its test's server."""
    if "deployed" in request.fixturenames:
        champion.aim_modelbit_client(request.getfixturevalue("server").url)


def test_single_inference(deployed):
    assert modelbit.get_inference(deployment="mb_double", data=21, version=1,
                                  **WHERE)["data"] == 42


def test_batch_inference(deployed):
    rows = [[1, 10], [2, 11], [3, 12]]
    answer = modelbit.get_inference(deployment="mb_double", data=rows, version="official",
                                    **WHERE)
    assert answer["data"] == [[1, 20], [2, 22], [3, 24]]


def test_multi_argument_batch_rows_are_bound_as_modelbit_binds_them(deployed):
    rows = [[1, 10, 11], [2, 20, 21], [3, 30, 31]]
    answer = modelbit.get_inference(deployment="mb_add", data=rows, **WHERE)
    assert answer["data"] == [[1, 21], [2, 41], [3, 61]]


def test_large_batches_are_chunked_by_the_client(deployed):
    rows = [[i, i, 1] for i in range(25)]
    answer = modelbit.get_inference(deployment="mb_add", data=rows, batch_size=10, **WHERE)
    assert answer["data"] == [[i, i + 1] for i in range(25)]


def test_dataframe_mode(deployed):
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 0.25, 0.0]}, index=[10, 11, 12])
    answer = modelbit.get_inference(deployment="mb_frame", data=frame, **WHERE)
    assert answer["data"] == [[10, 2.5], [11, 4.25], [12, 6.0]]


def test_an_alias_and_the_main_branch(deployed):
    assert modelbit.get_inference(deployment="mb_double", data=4, version="official",
                                  branch="main", **WHERE)["data"] == 8
    assert modelbit.get_inference(deployment="mb_double", data=[[1, 2, 3]],
                                  version="latest", **WHERE)["data"] == [[1, 5]]


def test_another_branch_is_a_clear_error(deployed):
    with pytest.raises(ModelbitError, match="no branch 'dev'"):
        modelbit.get_inference(deployment="mb_double", data=1, branch="dev", **WHERE)


def test_a_model_that_raises_runs_once_and_fails_clearly(deployed, capsys):
    started = time.perf_counter()
    with pytest.raises(ModelbitError, match="ValueError: bad input 3"):
        modelbit.get_inference(deployment="mb_explode", data=3, **WHERE)
    assert time.perf_counter() - started < 5  # no retries with backoff
    assert Path(deployed).read_text().count("called") == 1  # exactly one model call
    assert "ValueError: bad input 3" in capsys.readouterr().err  # Modelbit prints the error


def test_a_wrong_key_is_refused_and_the_right_one_accepted(tmp_path):
    srv = Server(tmp_path / "data", token="the-key", extra_args=["--require-auth"]).start()
    try:
        with srv.client() as client:
            client.deploy(double, "mb_keyed")
        champion.aim_modelbit_client(srv.url)
        with pytest.raises(ModelbitError, match="not valid"):
            modelbit.get_inference(deployment="mb_keyed", data=1, api_key="wrong", **WHERE)
        with pytest.raises(ModelbitError, match="needs the admin token"):
            modelbit.get_inference(deployment="mb_keyed", data=1, **WHERE)
        assert modelbit.get_inference(deployment="mb_keyed", data=5, api_key="the-key",
                                      **WHERE)["data"] == 10
    finally:
        srv.stop()
