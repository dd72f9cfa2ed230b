"""Adaptive micro-batching: concurrent single-row requests share one call of the function."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from champion.errors import InvalidInput, ModelError


def doubled(xs):
    import time as _t

    _t.sleep(0.01)  # long enough for requests to queue behind a running batch
    return [{"y": 2 * x, "batch": len(xs)} for x in xs]


def wrong_length(xs):
    return [0]


def two_params(a, b):
    return [a]


def _concurrent(server, name, values):
    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            rs = await asyncio.gather(*(http.post(f"/v1/{name}", json={"data": v})
                                        for v in values))
            return [r.json() for r in rs]

    return asyncio.run(run())


def test_concurrent_requests_are_merged_and_split_back(server, client, unique_name):
    client.deploy(doubled, unique_name, batch_max_size=32)
    answers = _concurrent(server, unique_name, list(range(64)))
    assert [a["data"]["y"] for a in answers] == [2 * v for v in range(64)]
    sizes = [a["data"]["batch"] for a in answers]
    assert max(sizes) > 1 and max(sizes) <= 32
    # A batch request goes through the same batcher.
    out = client.predict(unique_name, [[7, 1], [8, 2]])
    assert [[i, y["y"]] for i, y in out] == [[7, 2], [8, 4]]
    # A lone request is not held back (batch_max_wait_ms is 0).
    assert client.predict(unique_name, 5)["batch"] == 1


def test_a_function_that_breaks_the_list_contract_is_a_clear_500(client, unique_name):
    client.deploy(wrong_length, unique_name, batch_max_size=8)
    with pytest.raises(ModelError, match="returns a list of as many outputs"):
        client.predict(unique_name, [[1, 1], [2, 2]])


def test_batching_needs_a_one_parameter_function(client, unique_name):
    client.deploy(two_params, unique_name, batch_max_size=8)
    with pytest.raises(InvalidInput, match="one parameter"):
        client.predict(unique_name, [1, 2])
