"""The strategy interface: what makes a new way of testing a model one file.

A strategy is one object registered by name. Its hooks are pure (no I/O; the clock and the
RNG come in as arguments), and everything else in champion (the registry, the reports, the
controller, the API, the CLI, the client and the dashboard) loops over the registered
strategies instead of naming them:

============  ==================================================  ==========================
hook          takes                                               gives
============  ==================================================  ==========================
settings      the JSON under the strategy's key                   typed settings, or a
                                                                  SettingsError (a 400)
initial_state settings, the experiment                            the hot state to start with
policy        settings, hot state, the experiment                 a routing policy: per
                                                                  request, who answers, who
                                                                  gets a copy, who is merged
merge         settings, the decision, the variants' answers       the served answer and what
                                                                  to log (interleaving)
needs         settings, state, the experiment, now                which sufficient statistics
                                                                  the report reads
report        settings, state, the experiment, statistics, now    the report (JSON), with what
                                                                  the controller does next
step          settings, state, the experiment, report, now        nothing, a new state, or a
                                                                  transition with its reason
============  ==================================================  ==========================

Hot state (weights, a canary's step, a bandit's posteriors) is JSON, versioned per
experiment by the store and changed only through ``step`` (by the controller) or an
explicit action such as re-weighting.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from champion.routing.base import RoutingDecision, RoutingPolicy
from champion.strategies.settings import SettingsError, dump, parse, schema

S = TypeVar("S")

State = dict[str, Any]


@dataclass(frozen=True)
class Experiment:
    """What every hook may know about the experiment, beyond its own settings and state."""

    id: str
    endpoint: str
    strategy: str
    variants: tuple[str, ...]  # control first
    labels: Mapping[str, str]  # variant -> "deployment:version"
    control: str
    salt: str
    alpha: float = 0.05
    metrics: Mapping[str, Any] = field(default_factory=dict)  # primary, guardrails, covariate
    auto: Mapping[str, Any] = field(default_factory=dict)  # enabled, min_units
    status: str = "draft"
    created_at: float = 0.0
    started_at: float | None = None

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every variant but the control."""
        return tuple(v for v in self.variants if v != self.control)

    def own_variant(self, name: str) -> bool:
        """Whether the variant is a version of the endpoint itself (so it can be promoted)."""
        return self.labels.get(name, "").rpartition(":")[0] == self.endpoint


@dataclass(frozen=True)
class Answer:
    """One variant's answer to a request whose answers are merged."""

    ok: bool
    data: Any = None
    error: str | None = None
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Merged:
    """The served answer of a merged request.

    ``data`` is what the caller gets under ``"data"``; ``extra`` goes beside it in the
    response (e.g. ``teams``); ``detail`` is kept in the request log (what a later click must
    be credited against); ``arm`` is the log's arm for the request.
    """

    data: Any
    arm: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """What the controller should do: keep a new state, and/or take a transition.

    ``action`` is a transition (``"stop"``) with its ``decision`` (``{"promote": variant}``
    or ``{"action": "rollback"}``); ``event`` names the state change in the experiment's
    history (None: not recorded there, e.g. a bandit's routine re-allocation); ``reason``
    says why, for people; ``point`` is added to the experiment's timeline when the step is
    applied (a strategy whose every decision belongs on the timeline, e.g. each of a
    bandit's re-allocations, returns it here rather than from ``snapshot``).
    """

    state: State | None = None
    action: str | None = None
    decision: Mapping[str, Any] | None = None
    reason: str = ""
    event: str | None = None
    point: Mapping[str, Any] | None = None


class Strategy(ABC, Generic[S]):
    """Base of every strategy. Subclasses set ``name``, ``settings_type`` and the hooks."""

    #: The strategy's name; also the key its settings travel under.
    name: ClassVar[str] = ""
    #: One line for people (the API's list of strategies, the docs).
    summary: ClassVar[str] = ""
    #: A frozen dataclass of the settings (see :mod:`champion.strategies.settings`).
    settings_type: ClassVar[type[Any]]
    min_variants: ClassVar[int] = 2
    max_variants: ClassVar[int | None] = None

    # ------------------------------------------------------------ settings

    def legacy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Settings given outside the strategy's key by older clients (default: none)."""
        return {}

    def settings(self, raw: Any, exp: Experiment) -> S:
        """Typed, validated settings; ``SettingsError`` (a 400) names the bad field."""
        value: S = parse(self.settings_type, raw, self.name)
        self.check(value, exp)
        return value

    def check(self, settings: S, exp: Experiment) -> None:
        """Checks across fields or against the experiment (raise ``SettingsError``)."""

    def dump(self, settings: S) -> dict[str, Any]:
        out: dict[str, Any] = dump(settings)
        return out

    def schema(self) -> list[dict[str, Any]]:
        return schema(self.settings_type)

    # ------------------------------------------------------------ routing

    def initial_state(self, settings: S, exp: Experiment) -> State:
        """The hot state an experiment starts with."""
        return {}

    @abstractmethod
    def policy(self, settings: S, state: State, exp: Experiment) -> RoutingPolicy:
        """The routing policy for this settings + state (built once per state version)."""

    def merge(self, settings: S, exp: Experiment, decision: RoutingDecision, request_id: str,
              answers: Mapping[str, Answer]) -> Merged:
        """Merge the answers of ``decision.merge`` (strategies that call several variants)."""
        raise NotImplementedError(f"strategy {self.name!r} does not merge answers")

    # ------------------------------------------------------------ reports and steps

    def needs(self, settings: S, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        """Which statistics the report reads, by name, with their parameters."""
        return {}

    @abstractmethod
    def report(self, settings: S, state: State, exp: Experiment, stats: Mapping[str, Any],
               now: float, rng: np.random.Generator) -> dict[str, Any]:
        """The report: JSON, with a ``view`` for people (see :func:`view`)."""

    def step(self, settings: S, state: State, exp: Experiment, report: Mapping[str, Any],
             now: float) -> Step | None:
        """What the controller does after this report (None: nothing)."""
        return None

    def cadence(self, settings: S, exp: Experiment) -> float | None:
        """Seconds between the controller's steps of a running experiment (None: never)."""
        return None

    def snapshot(self, report: Mapping[str, Any]) -> dict[str, Any] | None:
        """A small point of the experiment's timeline, taken from a report."""
        return None

    # ------------------------------------------------------------ what people see and do

    def describe(self, settings: S, state: State, exp: Experiment) -> dict[str, Any]:
        """Fields added to the experiment's public JSON (e.g. current weights)."""
        return {}

    def reweight(self, settings: S, state: State, exp: Experiment,
                 weights: Mapping[str, float], now: float) -> State:
        """A new state with these weights (strategies with weights people may set)."""
        raise SettingsError("weights", f"{self.name} experiments have no weights to set")

    def promotable(self, settings: S, state: State, exp: Experiment,
                   report: Mapping[str, Any] | None) -> str | None:
        """The variant ``promote`` picks when none is named (None: one must be named)."""
        return None

    def revise(self, settings: S, state: State, exp: Experiment, new_settings: S,
               new_exp: Experiment, removed: tuple[str, ...], now: float) -> State:
        """The state after a change made while the experiment exists: new settings, variants
        added (appended to ``new_exp.variants``) or ``removed`` (they stay in the variants,
        so what was served by them keeps its name; the strategy stops routing to them).
        Raise ``SettingsError`` to refuse (the default: nothing can be changed)."""
        raise SettingsError("", f"{self.name} experiments cannot be changed once created; "
                            "stop this one and create another")


# --------------------------------------------------------------------------- registry

STRATEGIES: dict[str, Strategy[Any]] = {}


def register(strategy: Strategy[Any]) -> Strategy[Any]:
    """Register a strategy object under its name (a plugin module calls this on import)."""
    if not strategy.name or not strategy.name.replace("_", "").isalnum():
        raise ValueError(f"invalid strategy name {strategy.name!r}")
    existing = STRATEGIES.get(strategy.name)
    if existing is not None and type(existing) is not type(strategy):
        raise ValueError(f"strategy {strategy.name!r} is already registered")
    if not dataclasses.is_dataclass(strategy.settings_type):
        raise TypeError(f"{type(strategy).__name__}.settings_type must be a dataclass")
    STRATEGIES[strategy.name] = strategy
    return strategy


def get(name: str) -> Strategy[Any]:
    """The registered strategy, or a SettingsError listing the known ones."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(STRATEGIES))
        raise SettingsError("strategy", f"unknown strategy {str(name)[:40]!r}; one of "
                            f"{known}") from None


# --------------------------------------------------------------------------- views


def column(key: str, label: str, fmt: str = "text") -> dict[str, str]:
    """A table column: ``fmt`` is text, int, num, pct, ms, p, ci or pct_ci."""
    return {"key": key, "label": label, "format": fmt}


def table(id: str, title: str, columns: list[dict[str, str]], rows: list[dict[str, Any]]
          ) -> dict[str, Any]:
    return {"id": id, "title": title, "columns": columns, "rows": rows}


def alert(id: str, level: str, title: str, message: str, greys: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    """``level`` error (shown loudly), warning or info; ``greys``: chart ids to grey out."""
    return {"id": id, "level": level, "title": title, "message": message,
            "greys": list(greys)}


def chart(id: str, title: str, kind: str, series: list[dict[str, Any]], *,
          source: str = "report", x_format: str = "time", y_format: str = "num"
          ) -> dict[str, Any]:
    """``kind``: line, step, band or bar; ``source`` report (inline x/y) or timeline
    (``path``, ``low_path``, ``high_path`` into each timeline point)."""
    return {"id": id, "title": title, "kind": kind, "source": source, "x_format": x_format,
            "y_format": y_format, "series": series}


def view(headline: str, *, alerts: list[dict[str, Any]] | None = None,
         tables: list[dict[str, Any]] | None = None,
         charts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The part of a report people read: the CLI prints it, the dashboard draws it."""
    return {"headline": headline, "alerts": alerts or [], "tables": tables or [],
            "charts": charts or []}
