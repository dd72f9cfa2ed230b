"""The token buckets behind per-token and per-address rate limits."""

from __future__ import annotations

import pytest

from champion.errors import TooManyRequests
from champion.server.auth import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_seconds_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(clock)
    assert [limiter.take("a", 3) for _ in range(3)] == [0, 0, 0]
    wait = limiter.take("a", 3)
    assert wait == pytest.approx(1 / 3)
    clock.now += 1 / 3
    assert limiter.take("a", 3) == 0
    assert limiter.take("b", 3) == 0  # buckets are per key


def test_a_slow_rate_still_allows_one_request_and_says_when_to_retry():
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.check("t", 0.1, "the token 't'")
    with pytest.raises(TooManyRequests) as info:
        limiter.check("t", 0.1, "the token 't'")
    assert info.value.headers == {"Retry-After": "10"}
    assert info.value.status_code == 429 and "0.1 requests per second" in info.value.message
    limiter.check("t", 0, "off")  # 0: no limit


def test_full_buckets_are_forgotten_when_there_are_too_many_keys():
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.MAX_KEYS = 10
    for i in range(11):
        limiter.take(f"k{i}", 1)
    clock.now += 5
    limiter.take("new", 1)
    assert len(limiter.buckets) <= 2
