"""Weighted sticky A/B assignment over a bucket-ownership table (spec §3.5).

Each unit hashes to one of ``B = 10,000`` buckets (:func:`~champion.routing.hashing.bucket`);
a per-phase ownership table maps buckets to variants. The initial table is a Hamilton
(largest-remainder) apportionment of B by the weights (normalised by their sum), ties to the
lower variant index, variant 0 owning the lowest buckets.

Re-weighting moves as few buckets as possible: every variant keeps its lowest
``min(old, new)`` buckets, surplus buckets of shrinking variants are pooled in ascending
order and handed to growing variants in variant order. The number moved equals the total
variation ``½ Σ |new_i - old_i|``. Remember that a weight change starts a new analysis phase
(spec §3.5.5): analyse and SRM-check each phase separately.

Requests without a unit id are not sticky: they get a variant drawn by weight from the
``rng`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from champion.routing.base import (
    RoutingDecision,
    RoutingPolicy,
    RoutingRequest,
    UniformSource,
    register_policy,
)
from champion.routing.hashing import BUCKETS, bucket, in_coverage


def normalize_weights(weights: Sequence[float]) -> tuple[float, ...]:
    """Weights divided by their sum; rejects empty, negative, non-finite or all-zero weights."""
    w = [float(x) for x in weights]
    if not w:
        raise ValueError("at least one weight is required")
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise ValueError(f"weights must be finite and >= 0, got {list(weights)}")
    total = sum(w)
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return tuple(x / total for x in w)


def apportion(weights: Sequence[float], buckets: int = BUCKETS) -> tuple[int, ...]:
    """Hamilton (largest-remainder) bucket counts; ties go to the lower variant index."""
    w = normalize_weights(weights)
    raw = [x * buckets for x in w]
    counts = [math.floor(x) for x in raw]
    remaining = buckets - sum(counts)
    order = sorted(range(len(w)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[:remaining]:
        counts[i] += 1
    return tuple(counts)


def initial_owners(weights: Sequence[float], buckets: int = BUCKETS) -> tuple[int, ...]:
    """Contiguous table: variant 0 owns the lowest buckets, then variant 1, and so on."""
    owners: list[int] = []
    for v, c in enumerate(apportion(weights, buckets)):
        owners.extend([v] * c)
    return tuple(owners)


def owner_counts(owners: Sequence[int], n_variants: int) -> tuple[int, ...]:
    """Buckets owned by each variant."""
    counts = [0] * n_variants
    for v in owners:
        counts[v] += 1
    return tuple(counts)


def reweight_owners(owners: Sequence[int], new_weights: Sequence[float]) -> tuple[int, ...]:
    """Minimal-movement re-weighting of an ownership table (spec §3.5.3).

    ``new_weights`` may be longer than the old variant list (new variants start with 0 buckets).
    """
    k = len(new_weights)
    if owners and max(owners) >= k:
        raise ValueError("new_weights must cover every variant present in the table")
    target = apportion(new_weights, len(owners))
    by_variant: list[list[int]] = [[] for _ in range(k)]
    for b, v in enumerate(owners):
        by_variant[v].append(b)
    pool: list[int] = []
    for v in range(k):
        pool.extend(by_variant[v][target[v]:])
    pool.sort()
    new = list(owners)
    it = iter(pool)
    for v in range(k):
        for _ in range(target[v] - min(len(by_variant[v]), target[v])):
            new[next(it)] = v
    return tuple(new)


def moved_buckets(old: Sequence[int], new: Sequence[int]) -> int:
    """Number of buckets whose owner differs between two tables."""
    return sum(1 for a, b in zip(old, new, strict=True) if a != b)


def minimum_moves(old_counts: Sequence[int], new_counts: Sequence[int]) -> int:
    """Total-variation lower bound ``½ Σ |new_i - old_i|`` on moved buckets."""
    n = max(len(old_counts), len(new_counts))
    a = list(old_counts) + [0] * (n - len(old_counts))
    b = list(new_counts) + [0] * (n - len(new_counts))
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) // 2


def _runs(owners: Sequence[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for v in owners:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return runs


def _from_runs(runs: Sequence[Sequence[int]]) -> tuple[int, ...]:
    owners: list[int] = []
    for v, length in runs:
        owners.extend([int(v)] * int(length))
    return tuple(owners)


@register_policy("ab")
@dataclass(frozen=True)
class ABPolicy(RoutingPolicy):
    """Sticky weighted A/B split; ``variant_names[0]`` is the control.

    ``owners`` (bucket → variant index) defaults to the contiguous initial table; pass a
    persisted table to keep assignments stable after re-weighting. Units outside
    ``coverage`` are served the control with reason ``"not_covered"``.
    """

    variant_names: tuple[str, ...]
    weights: tuple[float, ...]
    salt: str
    coverage: float = 1.0
    buckets: int = BUCKETS
    owners: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        names = tuple(self.variant_names)
        if not names or len(set(names)) != len(names) or any(not n for n in names):
            raise ValueError("variant names must be unique non-empty strings")
        if len(self.weights) != len(names):
            raise ValueError("one weight per variant is required")
        if not self.salt:
            raise ValueError("salt must be a non-empty string")
        if not 0.0 <= self.coverage <= 1.0:
            raise ValueError("coverage must be in [0, 1]")
        if self.buckets <= 0:
            raise ValueError("buckets must be > 0")
        weights = normalize_weights(self.weights)
        owners = tuple(self.owners) if self.owners else initial_owners(weights, self.buckets)
        if len(owners) != self.buckets or any(not 0 <= v < len(names) for v in owners):
            raise ValueError("owners must map every bucket to a variant index")
        if owner_counts(owners, len(names)) != apportion(weights, self.buckets):
            raise ValueError("owners table does not match the weights")
        object.__setattr__(self, "variant_names", names)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "owners", owners)

    @property
    def variants(self) -> tuple[str, ...]:
        """Variant names, control first."""
        return self.variant_names

    @property
    def control(self) -> str:
        """The control (baseline) variant."""
        return self.variant_names[0]

    def assign(self, unit_id: str) -> str:
        """Sticky variant of a unit (ignores coverage)."""
        return self.variant_names[self.owners[bucket(unit_id, self.salt, self.buckets)]]

    def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
        """Bucket the unit; no unit id → weighted random draw from ``rng``."""
        unit = request.unit_id
        if not unit:
            return RoutingDecision(self._draw(rng.random()), (), self.name, "random")
        if self.coverage < 1.0 and not in_coverage(unit, self.salt, self.coverage, self.buckets):
            return RoutingDecision(self.control, (), self.name, "not_covered")
        b = bucket(unit, self.salt, self.buckets)
        return RoutingDecision(self.variant_names[self.owners[b]], (), self.name, "bucket", b)

    def _draw(self, u: float) -> str:
        cum = 0.0
        for name, w in zip(self.variant_names, self.weights, strict=True):
            cum += w
            if u < cum and w > 0:
                return name
        return next(n for n, w in zip(self.variant_names, self.weights, strict=True) if w > 0)

    def reweighted(
        self, weights: Sequence[float], variant_names: Sequence[str] | None = None
    ) -> ABPolicy:
        """Same salt, new weights, minimal bucket movement (new variants may be appended)."""
        names = tuple(variant_names) if variant_names is not None else self.variant_names
        if names[: len(self.variant_names)] != self.variant_names:
            raise ValueError("existing variants must keep their order; only append new ones")
        owners = reweight_owners(self.owners, weights)
        return ABPolicy(names, tuple(weights), self.salt, self.coverage, self.buckets, owners)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Config keys: ``variants``, ``weights``, ``salt``, optional ``coverage``,
        ``buckets`` and ``owner_runs`` (run-length ``[[variant_index, length], ...]``)."""
        runs = config.get("owner_runs")
        return cls(
            tuple(str(v) for v in config["variants"]),
            tuple(float(w) for w in config["weights"]),
            str(config["salt"]),
            float(config.get("coverage", 1.0)),
            int(config.get("buckets", BUCKETS)),
            _from_runs(runs) if runs else (),
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config with the ownership table run-length encoded."""
        return {
            "variants": list(self.variant_names),
            "weights": list(self.weights),
            "salt": self.salt,
            "coverage": self.coverage,
            "buckets": self.buckets,
            "owner_runs": _runs(self.owners),
        }
