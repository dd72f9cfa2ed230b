"""The micro-batcher's bookkeeping (runtime/batching.py) against a pool that answers in
process: requests merged and split at batch_max_size, answers back in order, one failure
failing exactly the requests of its batch. The real pools are tested in e2e/test_batching.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from champion.errors import InvalidInput, ModelError
from champion.runtime import protocol as p
from champion.runtime.batching import Batcher


@dataclass
class Spec:
    batch_max_size: int
    batch_max_wait_ms: float = 0.0
    workers: int = 1


class Pool:
    """Doubles every input; ``fail_on`` an input value makes that batch an error."""

    def __init__(self, size: int, fail_on: Any = None) -> None:
        self.spec = Spec(size)
        self.bodies: list[list[Any]] = []
        self.fail_on = fail_on

    async def call(self, body: bytes, timeout: float | None = None) -> tuple[int, bytes]:
        vector = orjson.loads(body)["vector"]
        self.bodies.append(vector)
        await asyncio.sleep(0.001)
        if self.fail_on in vector:
            return p.ERROR, orjson.dumps({"type": "ValueError", "message": "bad input"})
        return p.RESULT, orjson.dumps([2 * x for x in vector])


def test_requests_merge_and_split_at_the_batch_size_and_answer_in_order() -> None:
    async def main() -> tuple[list[list[Any]], Pool]:
        pool = Pool(4)
        batcher = Batcher(pool)
        outs = await asyncio.gather(batcher.submit([1]), batcher.submit(list(range(10, 20))),
                                    batcher.submit([2, 3]), batcher.submit([4]))
        assert batcher.queued == 0 and batcher.inflight == 0
        return outs, pool

    outs, pool = asyncio.run(main())
    assert outs == [[2], [2 * x for x in range(10, 20)], [4, 6], [8]]
    assert all(len(b) <= 4 for b in pool.bodies)
    assert sorted(x for b in pool.bodies for x in b) == sorted([1, 2, 3, 4, *range(10, 20)])


def test_a_failed_batch_fails_its_requests_only() -> None:
    async def main() -> list[Any]:
        pool = Pool(2, fail_on=99)
        batcher = Batcher(pool)
        # slots = workers + 1 = 2: [1] and [99] leave alone, at once; [5, 6] waits and
        # leaves in a batch of its own
        return await asyncio.gather(batcher.submit([1]), batcher.submit([99]),
                                    batcher.submit([5, 6]), return_exceptions=True)

    first, failed, third = asyncio.run(main())
    assert first == [2] and third == [10, 12]
    assert isinstance(failed, ModelError) and "bad input" in failed.message


def test_inputs_too_deep_to_write_are_refused_before_they_join_a_batch() -> None:
    deep: Any = 0
    for _ in range(260):
        deep = [deep]

    async def main() -> None:
        batcher = Batcher(Pool(8))
        with pytest.raises(InvalidInput, match="nested too deeply"):
            await batcher.submit([deep])
        assert batcher.queued == 0 and await batcher.submit([]) == []

    asyncio.run(main())
