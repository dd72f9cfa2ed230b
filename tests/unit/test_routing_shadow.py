"""Shadow routing policy and the policy registry (spec §6.1, routing/base.py)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import pytest

from champion.routing import (
    POLICY_REGISTRY,
    RoutingDecision,
    RoutingPolicy,
    RoutingRequest,
    ShadowPolicy,
    UniformSource,
    create_policy,
    register_policy,
    u01,
)


def test_primary_always_answers_and_sampling_is_deterministic() -> None:
    policy = ShadowPolicy("prod", ("cand",), (25.0,), "shadow-salt")
    rng = random.Random(0)
    decisions = [policy.decide(RoutingRequest(f"req-{i}"), rng) for i in range(8000)]
    assert all(d.variant == "prod" for d in decisions)
    share = sum(d.shadows == ("cand",) for d in decisions) / len(decisions)
    assert share == pytest.approx(0.25, abs=4 * (0.25 * 0.75 / 8000) ** 0.5)
    replay = [policy.decide(RoutingRequest(f"req-{i}"), random.Random(9)) for i in range(8000)]
    assert replay == decisions
    mirrored = u01("shadow-salt", "req-1", "shadow") < 0.25
    assert (policy.decide(RoutingRequest("req-1"), rng).shadows == ("cand",)) is mirrored


def test_shadows_are_nested_and_edge_percents() -> None:
    policy = ShadowPolicy("prod", ("s10", "s50", "all", "none"), (10, 50, 100, 0), "salt")
    rng = random.Random(0)
    for i in range(3000):
        d = policy.decide(RoutingRequest(f"r{i}"), rng)
        assert "all" in d.shadows and "none" not in d.shadows
        if "s10" in d.shadows:
            assert "s50" in d.shadows
        assert d.targets[0] == "prod"


def test_sample_by_unit_and_rng_fallback() -> None:
    policy = ShadowPolicy("prod", ("cand",), (50,), "salt", sample_by="unit")
    rng = random.Random(0)
    first = policy.decide(RoutingRequest("a", "user-7"), rng)
    assert all(policy.decide(RoutingRequest(f"x{i}", "user-7"), rng) == first for i in range(20))
    fallback = ShadowPolicy("prod", ("cand",), (50,), "salt")
    draws = [fallback.decide(RoutingRequest(""), random.Random(s)).shadows for s in range(400)]
    assert 0.4 < sum(bool(d) for d in draws) / 400 < 0.6
    assert fallback.decide(RoutingRequest("with|pipe"), rng).variant == "prod"


def test_shadow_config_round_trip_and_validation() -> None:
    policy = create_policy("shadow", {"primary": "p", "shadows": ["s1", "s2"], "percent": 5,
                                      "salt": "x"})
    assert isinstance(policy, ShadowPolicy) and policy.percents == (5.0, 5.0)
    assert create_policy("shadow", policy.to_config()) == policy
    with pytest.raises(ValueError):
        ShadowPolicy("p", ("p",), (5,), "x")
    with pytest.raises(ValueError):
        ShadowPolicy("p", ("s",), (150,), "x")
    with pytest.raises(ValueError):
        create_policy("nope", {})


def test_registry_accepts_a_new_strategy() -> None:
    assert {"ab", "shadow"} <= set(POLICY_REGISTRY)

    @dataclass(frozen=True)
    class AlwaysFirst(RoutingPolicy):
        arms: tuple[str, ...]

        @property
        def variants(self) -> tuple[str, ...]:
            return self.arms

        def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
            return RoutingDecision(self.arms[0], policy=self.name, reason="fixed")

        @classmethod
        def from_config(cls, config: Mapping[str, Any]) -> Self:
            return cls(tuple(config["arms"]))

        def to_config(self) -> dict[str, Any]:
            return {"arms": list(self.arms)}

    try:
        register_policy("always-first-test")(AlwaysFirst)
        policy = create_policy("always-first-test", {"arms": ["x", "y"]})
        assert policy.decide(RoutingRequest("r"), random.Random()).variant == "x"
        assert policy.name == "always-first-test"
        with pytest.raises(ValueError):
            register_policy("ab")(AlwaysFirst)
    finally:
        POLICY_REGISTRY.pop("always-first-test", None)
