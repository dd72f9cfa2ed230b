"""Routing policy protocol and registry.

A routing policy is a strategy object with one decision method::

    decide(request: RoutingRequest, rng: UniformSource) -> RoutingDecision

The decision names the variant that answers the request, the variants that receive a
mirrored (shadow) copy, and the variants whose answers are merged. Policies are pure: no I/O
and no clock; any randomness not derived from hashing (spec §0.1) comes from the ``rng``
argument. Strategies (``champion.strategies``) build their policies from these classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, TypeVar


class UniformSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): ``random.Random``, numpy ``Generator``."""

    def random(self) -> float:
        """Return the next uniform draw in [0, 1)."""
        ...


@dataclass(frozen=True)
class RoutingRequest:
    """What a policy may look at: request id, optional unit (user) id and free-form context."""

    request_id: str
    unit_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingDecision:
    """Who answers (``variant``), who gets a mirrored copy (``shadows``) and, for strategies
    that combine several answers into one (interleaving), who is called (``merge``).

    ``reason`` says how the variant was chosen (e.g. ``"bucket"``, ``"random"``,
    ``"not_covered"``, ``"primary"``); ``bucket`` is the unit's bucket when hashing was used.
    With ``merge`` set, every variant in it is called concurrently and the strategy's
    ``merge`` hook builds the answer; ``variant`` is then the one that answers alone when
    the others fail. ``params`` is what the policy hands on to that merge (e.g. the page of
    an earlier request's merged list that this request asks for).
    """

    variant: str
    shadows: tuple[str, ...] = ()
    policy: str = ""
    reason: str = ""
    bucket: int | None = None
    merge: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every variant the request reaches: the answering (or merged) ones, then shadows."""
        return (*(self.merge or (self.variant,)), *self.shadows)


class RoutingPolicy(ABC):
    """Base class of routing strategies; subclasses set ``name`` and implement ``decide``."""

    name: ClassVar[str] = ""

    @property
    @abstractmethod
    def variants(self) -> tuple[str, ...]:
        """All variant names this policy can route to (answering or shadow)."""

    @abstractmethod
    def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
        """Route one request."""

    @classmethod
    @abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build (and validate) the policy from a JSON-like config mapping."""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config; ``from_config(to_config())`` round-trips."""


#: Registered policy classes by name.
POLICY_REGISTRY: dict[str, type[RoutingPolicy]] = {}

P = TypeVar("P", bound=type[RoutingPolicy])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator registering a policy under ``name`` (sets ``cls.name``)."""

    def deco(cls: P) -> P:
        if name in POLICY_REGISTRY and POLICY_REGISTRY[name] is not cls:
            raise ValueError(f"routing policy {name!r} already registered")
        cls.name = name
        POLICY_REGISTRY[name] = cls
        return cls

    return deco


def create_policy(name: str, config: Mapping[str, Any]) -> RoutingPolicy:
    """Instantiate the policy registered as ``name`` from its config."""
    try:
        cls = POLICY_REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(POLICY_REGISTRY))
        raise ValueError(f"unknown routing policy {name!r} (known: {known})") from None
    return cls.from_config(config)
