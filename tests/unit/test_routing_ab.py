"""Weighted sticky A/B assignment and minimal-movement re-weighting (spec §3.5)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.srm import srm_check
from champion.routing import RoutingRequest, create_policy
from champion.routing.ab import (
    ABPolicy,
    apportion,
    initial_owners,
    minimum_moves,
    moved_buckets,
    normalize_weights,
    owner_counts,
    reweight_owners,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


RW = VECTORS["reweight"]
UNITS = [f"user-{i}" for i in range(20_000)]


@pytest.mark.parametrize("case", RW["apportion"], ids=lambda c: str(c["weights"]))
def test_apportion_vectors(case: dict[str, Any]) -> None:
    assert list(apportion(case["weights"], RW["buckets"])) == case["counts"]


@pytest.mark.parametrize("case", RW["moves"], ids=lambda c: f"{c['old']}->{c['new']}")
def test_reweight_vectors(case: dict[str, Any]) -> None:
    old = initial_owners(case["old"], RW["buckets"])
    new = reweight_owners(old, case["new"])
    k = len(case["new"])
    counts = owner_counts(new, k)
    assert counts == apportion(case["new"], RW["buckets"])
    if "new_counts" in case:
        assert list(counts) == case["new_counts"]
    assert moved_buckets(old, new) == case["minimal"]
    assert moved_buckets(old, new) == minimum_moves(owner_counts(old, k), counts)
    if "tv_bound" in case:
        assert minimum_moves(owner_counts(old, k), counts) == case["tv_bound"]
    assert moved_buckets(old, initial_owners(case["new"], RW["buckets"])) == case["contiguous"]


def test_reweight_keeps_lowest_buckets_and_moves_only_from_shrinking_variants() -> None:
    old = initial_owners([1, 1, 1])
    new = reweight_owners(old, [0.5, 0.25, 0.25])
    for b, (o, n) in enumerate(zip(old, new, strict=True)):
        if o != n:
            assert n == 0 and o in (1, 2)  # only variant 0 grows
        if o == 1 and b < 3334 + 2500:
            assert n == 1  # variant 1 keeps its lowest-indexed buckets


def test_weights_are_normalised_by_their_sum() -> None:
    assert normalize_weights([9, 1]) == pytest.approx((0.9, 0.1))
    assert apportion([9, 1]) == apportion([0.9, 0.1]) == (9000, 1000)
    for bad in ([], [1, -1], [0, 0], [float("nan"), 1]):
        with pytest.raises(ValueError):
            normalize_weights(bad)


def _assign(policy: ABPolicy) -> dict[str, str]:
    rng = random.Random(0)
    return {u: policy.decide(RoutingRequest(f"r-{u}", u), rng).variant for u in UNITS}


def test_90_10_split_over_20000_units_within_binomial_tolerance() -> None:
    policy = ABPolicy(("control", "candidate"), (90, 10), "exp-90-10")
    assigned = _assign(policy)
    n_candidate = sum(v == "candidate" for v in assigned.values())
    sd = (20_000 * 0.9 * 0.1) ** 0.5
    assert abs(n_candidate - 2000) < 4 * sd
    counts = [20_000 - n_candidate, n_candidate]
    assert not srm_check(counts, [0.9, 0.1]).srm_detected
    # sticky: same unit, different request ids and rng -> same variant
    rng = random.Random(42)
    for u in UNITS[:500]:
        assert policy.decide(RoutingRequest("other", u), rng).variant == assigned[u]


def test_srm_fires_when_assignments_are_lost() -> None:
    policy = ABPolicy(("control", "candidate"), (90, 10), "exp-90-10")
    assigned = _assign(policy)
    # corrupt the log: 20% of candidate exposures are dropped (e.g. a crashing variant)
    logged = [v for i, v in enumerate(assigned.values()) if v == "control" or i % 5 != 0]
    counts = [logged.count("control"), logged.count("candidate")]
    r = srm_check(counts, [0.9, 0.1])
    assert r.srm_detected and r.p_value < 1e-6


def test_reweighting_moves_only_the_required_share_of_units() -> None:
    before = ABPolicy(("a", "b"), (0.5, 0.5), "exp-rw")
    after = before.reweighted((0.3, 0.7))
    a0, a1 = _assign(before), _assign(after)
    moved = [u for u in UNITS if a0[u] != a1[u]]
    assert all(a0[u] == "a" and a1[u] == "b" for u in moved)  # only a -> b
    share = len(moved) / len(UNITS)
    sd = (0.2 * 0.8 / len(UNITS)) ** 0.5
    assert abs(share - 0.2) < 4 * sd
    b_share = sum(v == "b" for v in a1.values()) / len(UNITS)
    assert b_share == pytest.approx(0.7, abs=4 * (0.21 / len(UNITS)) ** 0.5)


def test_adding_a_variant_takes_buckets_from_existing_ones() -> None:
    base = ABPolicy(("a", "b"), (0.5, 0.5), "exp-add")
    grown = base.reweighted((0.4, 0.4, 0.2), ("a", "b", "c"))
    assert owner_counts(grown.owners, 3) == (4000, 4000, 2000)
    assert moved_buckets(base.owners, grown.owners) == 2000
    with pytest.raises(ValueError):
        base.reweighted((0.5, 0.5), ("b", "a"))


def test_no_unit_uses_the_rng_by_weight() -> None:
    policy = ABPolicy(("a", "b", "c"), (0.2, 0.0, 0.8), "exp-anon")
    rng = np.random.default_rng(5)
    picks = [policy.decide(RoutingRequest(f"r{i}"), rng) for i in range(5000)]
    assert all(p.reason == "random" and p.bucket is None for p in picks)
    share_a = sum(p.variant == "a" for p in picks) / 5000
    assert share_a == pytest.approx(0.2, abs=0.025)
    assert not any(p.variant == "b" for p in picks)  # zero weight never drawn


def test_coverage_serves_control_outside_the_experiment() -> None:
    policy = ABPolicy(("a", "b"), (0.5, 0.5), "exp-cov", coverage=0.3)
    rng = random.Random(0)
    decisions = [policy.decide(RoutingRequest("r", u), rng) for u in UNITS[:5000]]
    outside = [d for d in decisions if d.reason == "not_covered"]
    assert len(outside) / 5000 == pytest.approx(0.7, abs=0.03)
    assert all(d.variant == "a" for d in outside)


def test_config_round_trip_and_validation() -> None:
    policy = ABPolicy(("a", "b"), (1, 3), "exp-cfg").reweighted((0.5, 0.5))
    cfg = json.loads(json.dumps(policy.to_config()))
    again = create_policy("ab", cfg)
    assert again == policy
    assert isinstance(again, ABPolicy) and again.owners == policy.owners
    for kwargs in (
        {"variant_names": ("a", "a"), "weights": (1, 1), "salt": "s"},
        {"variant_names": ("a", "b"), "weights": (1,), "salt": "s"},
        {"variant_names": ("a", "b"), "weights": (1, 1), "salt": ""},
        {"variant_names": ("a", "b"), "weights": (1, 1), "salt": "s", "coverage": 1.5},
        {"variant_names": ("a", "b"), "weights": (1, 1), "salt": "s", "owners": (0,) * 10_000},
    ):
        with pytest.raises(ValueError):
            ABPolicy(**kwargs)
