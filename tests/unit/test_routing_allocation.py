"""Routing by an allocation: weighted draws per request, sticky units, minimal movement."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from champion.routing import AllocationPolicy, RoutingRequest, create_policy
from champion.routing.ab import minimum_moves, owner_counts
from champion.routing.allocation import owners_for, pack_owners, unpack_owners
from champion.routing.hashing import BUCKETS


def test_requests_without_a_unit_follow_the_shares() -> None:
    policy = AllocationPolicy(("a", "b", "c"), (0.2, 0.3, 0.5), "salt")
    rng = random.Random(3)
    picks = [policy.decide(RoutingRequest("k"), rng).variant for _ in range(20_000)]
    counts = [picks.count(v) for v in "abc"]
    assert stats.chisquare(counts, [4000, 6000, 10_000]).pvalue > 0.001
    assert policy.decide(RoutingRequest("k"), rng).reason == "draw"


def test_an_arm_with_no_share_is_never_drawn() -> None:
    policy = AllocationPolicy(("a", "b", "c"), (0.5, 0.0, 0.5), "salt")
    assert {policy.draw(u / 1000) for u in range(1000)} == {"a", "c"}
    assert policy.draw(0.5) == "c" and policy.draw(1.0 - 1e-17) == "c"
    last = AllocationPolicy(("a", "b"), (1.0, 0.0), "salt")
    assert last.draw(0.9999999999999999) == "a"


def test_units_stick_to_their_bucket_and_move_as_little_as_the_shares_do() -> None:
    before = owners_for((0.5, 0.5))
    policy = AllocationPolicy(("a", "b"), (0.5, 0.5), "salt", before)
    units = [f"u{i}" for i in range(2000)]
    first = {u: policy.decide(RoutingRequest("k", u), random.Random()).variant for u in units}
    assert first == {u: policy.decide(RoutingRequest("x", u), random.Random()).variant
                     for u in units}  # the same unit, another request: the same arm
    after = owners_for((0.2, 0.8), before)
    moved = sum(a != b for a, b in zip(before, after, strict=True))
    assert moved == minimum_moves(owner_counts(before, 2), owner_counts(after, 2)) == 3000
    grown = owners_for((0.1, 0.6, 0.3), after)  # an arm added: appended, starts empty
    assert owner_counts(grown, 3) == (1000, 6000, 3000)


def test_the_table_packs_small_and_round_trips() -> None:
    owners = owners_for((0.25, 0.25, 0.5))
    packed = pack_owners(owners)
    assert len(packed) < 200 and unpack_owners(packed) == owners
    policy = AllocationPolicy(("a", "b", "c"), (1, 1, 2), "salt", owners)
    again = create_policy("allocation", policy.to_config())
    assert again == policy and again.shares == (0.25, 0.25, 0.5)
    assert policy.bucket_shares() == (0.25, 0.25, 0.5)


@pytest.mark.parametrize("bad", [
    dict(names=("a", "a"), shares=(1, 1)),
    dict(names=("a", "b"), shares=(1,)),
    dict(names=("a", "b"), shares=(0, 0)),
    dict(names=("a", "b"), shares=(1, float("nan"))),
    dict(names=("a", "b"), shares=(1, 1), owners=(0, 1, 2)),
])
def test_bad_allocations_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        AllocationPolicy(salt="s", **bad)
    assert len(owners_for((1.0,))) == BUCKETS
