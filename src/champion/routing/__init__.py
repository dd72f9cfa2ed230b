"""Pure routing layer: deterministic hashing, policy protocol and the built-in policies.

No I/O, no clock; randomness is hashed from request / unit ids (spec §0.1, §3.5) or drawn
from an ``rng`` passed in. Adding a policy = one module + one import line below.
"""

from champion.routing import ab, allocation, shadow  # noqa: F401  (import registers them)
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
from champion.routing.allocation import AllocationPolicy
from champion.routing.base import (
    POLICY_REGISTRY,
    RoutingDecision,
    RoutingPolicy,
    RoutingRequest,
    UniformSource,
    create_policy,
    register_policy,
)
from champion.routing.hashing import BUCKETS, bucket, hash_u64, in_coverage, u01
from champion.routing.shadow import ShadowPolicy

__all__ = [
    "BUCKETS",
    "POLICY_REGISTRY",
    "ABPolicy",
    "AllocationPolicy",
    "RoutingDecision",
    "RoutingPolicy",
    "RoutingRequest",
    "ShadowPolicy",
    "UniformSource",
    "apportion",
    "bucket",
    "create_policy",
    "hash_u64",
    "in_coverage",
    "initial_owners",
    "minimum_moves",
    "moved_buckets",
    "normalize_weights",
    "owner_counts",
    "register_policy",
    "reweight_owners",
    "u01",
]
