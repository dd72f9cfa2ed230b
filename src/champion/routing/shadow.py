"""Shadow (mirrored-traffic) routing policy (spec §6.1).

The primary (production) variant always answers. Each shadow variant receives a mirrored
copy of a deterministic fraction of requests: one draw ``u = u01(salt, key, "shadow")`` per
request (spec §0.1), keyed by the request id (or by the unit id with ``sample_by="unit"``),
and shadow ``i`` is mirrored when ``u < percent_i / 100``. Using one draw per request makes
the sampled sets nested (a 10% shadow sees a subset of a 50% shadow's requests), which
maximises the overlap when shadows are compared with each other; replays mirror identically.
A ``|`` in the key is percent-escaped (``%7C``) before hashing; only a request with no key
falls back to the ``rng`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from champion.routing.base import (
    RoutingDecision,
    RoutingPolicy,
    RoutingRequest,
    UniformSource,
    register_policy,
)
from champion.routing.hashing import hash_u64

SampleBy = Literal["request", "unit"]


@register_policy("shadow")
@dataclass(frozen=True)
class ShadowPolicy(RoutingPolicy):
    """Primary answers; shadows are mirrored on ``percents[i]`` % of requests."""

    primary: str
    shadows: tuple[str, ...]
    percents: tuple[float, ...]
    salt: str
    sample_by: SampleBy = "request"
    # every shadow at 100 %: each request is mirrored to all, whatever its draw (u < 1)
    _always: tuple[str, ...] | None = field(default=None, init=False, repr=False,
                                            compare=False)

    def __post_init__(self) -> None:
        shadows = tuple(self.shadows)
        percents = tuple(float(p) for p in self.percents)
        names = (self.primary, *shadows)
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ValueError("primary and shadow names must be unique non-empty strings")
        if len(percents) != len(shadows):
            raise ValueError("one percent per shadow is required")
        if any(not math.isfinite(p) or not 0.0 <= p <= 100.0 for p in percents):
            raise ValueError("percents must be in [0, 100]")
        if not self.salt or "|" in self.salt:
            raise ValueError("salt must be a non-empty string without '|'")
        if self.sample_by not in ("request", "unit"):
            raise ValueError("sample_by must be 'request' or 'unit'")
        object.__setattr__(self, "shadows", shadows)
        object.__setattr__(self, "percents", percents)
        object.__setattr__(self, "_always", shadows if all(p >= 100.0 for p in percents)
                           else None)

    @property
    def variants(self) -> tuple[str, ...]:
        """Primary first, then the shadows."""
        return (self.primary, *self.shadows)

    def sample_draw(self, request: RoutingRequest, rng: UniformSource) -> float:
        """The request's uniform draw: hashed from its key, or from ``rng`` when it has none."""
        key = request.unit_id if self.sample_by == "unit" else request.request_id
        if key:
            # u01(salt, key, "shadow") written out: the salt has no "|" (checked above) and
            # the key's are escaped, so the join needs no check
            return hash_u64(f"{self.salt}|{key.replace('|', '%7C')}|shadow") / 2.0**64
        return rng.random()

    def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
        """Primary answers; mirror to every shadow whose percent exceeds the draw."""
        always = self._always
        if always is not None:
            return RoutingDecision(self.primary, always, self.name, "primary")
        u = self.sample_draw(request, rng)
        mirrored = tuple(
            s for s, pct in zip(self.shadows, self.percents, strict=True) if u < pct / 100.0
        )
        return RoutingDecision(self.primary, mirrored, self.name, "primary")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Config keys: ``primary``, ``shadows`` (list of names) and ``percents`` (same length,
        or a single ``percent`` for all), ``salt``, optional ``sample_by``."""
        shadows: Sequence[str] = [str(s) for s in config.get("shadows", [])]
        if "percents" in config:
            percents = tuple(float(p) for p in config["percents"])
        else:
            percents = tuple(float(config.get("percent", 100.0)) for _ in shadows)
        return cls(
            str(config["primary"]),
            tuple(shadows),
            percents,
            str(config["salt"]),
            config.get("sample_by", "request"),
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config."""
        return {
            "primary": self.primary,
            "shadows": list(self.shadows),
            "percents": list(self.percents),
            "salt": self.salt,
            "sample_by": self.sample_by,
        }
