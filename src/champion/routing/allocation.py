"""Routing by a changing allocation: a weighted draw per request, optionally sticky by unit.

A strategy that moves traffic often (a bandit re-allocates every few seconds) gives one
share per variant; each request without a unit draws its variant from the shares with the
``rng`` passed in (one uniform, a binary search of the cumulative shares: no I/O and no
hashing on the request path). With ``owners`` (bucket → variant index, spec §3.5's table),
a request with a unit gets its unit's bucket's variant instead, so a returning unit keeps
its variant; the strategy moves the table with
:func:`~champion.routing.ab.reweight_owners` at each re-allocation, which moves only the
buckets it must (the total variation of the change).

The table travels in the strategy's state packed (:func:`pack_owners`): 10,000 buckets,
one byte each, compressed and base64-encoded.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from champion.routing.ab import initial_owners, owner_counts, reweight_owners
from champion.routing.base import (
    RoutingDecision,
    RoutingPolicy,
    RoutingRequest,
    UniformSource,
    register_policy,
)
from champion.routing.hashing import BUCKETS, bucket


def pack_owners(owners: Sequence[int]) -> str:
    """A bucket table as text: one byte per bucket, zlib-compressed, base64."""
    return base64.b64encode(zlib.compress(bytes(owners), 9)).decode("ascii")


def unpack_owners(text: str) -> tuple[int, ...]:
    return tuple(zlib.decompress(base64.b64decode(text.encode("ascii"))))


def owners_for(shares: Sequence[float], previous: Sequence[int] | None = None,
               buckets: int = BUCKETS) -> tuple[int, ...]:
    """The bucket table for ``shares``: moved from ``previous`` as little as possible
    (new variants, appended, start with none), or contiguous when there is none."""
    if len(shares) > 256:
        raise ValueError("at most 256 variants in a bucket table")
    if previous:
        return reweight_owners(previous, shares)
    return initial_owners(shares, buckets)


@register_policy("allocation")
@dataclass(frozen=True)
class AllocationPolicy(RoutingPolicy):
    """Variant ``names[i]`` answers a share ``shares[i]`` of the requests (normalised);
    with ``owners``, units stick to their bucket's variant."""

    names: tuple[str, ...]
    shares: tuple[float, ...]
    salt: str
    owners: tuple[int, ...] = field(default=(), repr=False)
    _cum: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(self.names)
        shares = tuple(float(x) for x in self.shares)
        if not names or len(set(names)) != len(names) or any(not n for n in names):
            raise ValueError("variant names must be unique non-empty strings")
        if len(shares) != len(names):
            raise ValueError("one share per variant is required")
        if any(not math.isfinite(x) or x < 0 for x in shares) or not sum(shares) > 0:
            raise ValueError(f"shares are finite, >= 0 and not all 0, got {list(shares)}")
        if not self.salt:
            raise ValueError("salt must be a non-empty string")
        owners = tuple(self.owners)
        if owners and (len(owners) != BUCKETS or max(owners) >= len(names)):
            raise ValueError("owners must map every bucket to a variant index")
        total = sum(shares)
        cum = tuple(itertools.accumulate(x / total for x in shares))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "shares", tuple(x / total for x in shares))
        object.__setattr__(self, "owners", owners)
        object.__setattr__(self, "_cum", cum)

    @property
    def variants(self) -> tuple[str, ...]:
        return self.names

    def draw(self, u: float) -> str:
        """The variant a uniform ``u`` in [0, 1) picks (never one with share 0: its
        cumulative share equals the one before it, so the search passes it by)."""
        i = bisect.bisect_right(self._cum, u)
        if i >= len(self.names):  # u above a total rounded below 1
            i = max(j for j, x in enumerate(self.shares) if x > 0)
        return self.names[i]

    def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
        unit = request.unit_id
        if unit and self.owners:
            b = bucket(unit, self.salt)
            return RoutingDecision(self.names[self.owners[b]], (), self.name, "bucket", b)
        return RoutingDecision(self.draw(rng.random()), (), self.name, "draw")

    def bucket_shares(self) -> tuple[float, ...]:
        """The share of buckets each variant owns (what units get)."""
        counts = owner_counts(self.owners, len(self.names)) if self.owners else ()
        return tuple(c / BUCKETS for c in counts)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Config keys: ``variants``, ``shares``, ``salt``, optional ``owners`` (packed)."""
        packed = config.get("owners")
        return cls(tuple(str(v) for v in config["variants"]),
                   tuple(float(x) for x in config["shares"]), str(config["salt"]),
                   unpack_owners(packed) if packed else ())

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variants": list(self.names), "shares": list(self.shares),
                               "salt": self.salt}
        if self.owners:
            out["owners"] = pack_owners(self.owners)
        return out
