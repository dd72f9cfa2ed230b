"""Experiments: a traffic policy attached to an endpoint, and its lifecycle.

draft -> running <-> paused -> stopped (from any state but stopped). At most one experiment is
running or paused per endpoint (the store enforces it). Every transition is recorded with
when, who and why; stopping may promote a variant, which moves the endpoint's
``production`` alias.

What an experiment does is its strategy's business (``champion.strategies``): this module
validates what every experiment has (the endpoint, the variants, the control, the salt,
alpha, metrics, automatic decisions), hands the strategy its own settings (the JSON under
its name) and keeps the store's rows; it never names a strategy.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from champion.errors import BadRequest, Conflict, NotFound
from champion.routing import RoutingPolicy
from champion.store.experiments import ExperimentConflict, StateConflict
from champion.store.leases import Fence
from champion.strategies import STRATEGIES, Experiment, SettingsError, State, Step, Strategy
from champion.strategies import get as get_strategy

if TYPE_CHECKING:
    from champion.registry.service import Registry

ARM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "stop": (("draft", "running", "paused"), "stopped"),
}
COMMON_KEYS = frozenset({"endpoint", "strategy", "variants", "control", "name", "salt",
                         "alpha", "metrics", "auto", "start", "reason"})


@dataclass(frozen=True)
class Arm:
    name: str
    deployment: str
    version: int

    @property
    def label(self) -> str:
        return f"{self.deployment}:{self.version}"


@dataclass(frozen=True)
class Active:
    """What the inference path needs of an endpoint's running (or paused) experiment."""

    id: str
    endpoint: str
    status: str
    strategy: Strategy[Any]
    settings: Any
    state: State
    state_version: int
    exp: Experiment
    policy: RoutingPolicy
    arms: dict[str, Arm]

    @property
    def running(self) -> bool:
        return self.status == "running"


def new_id() -> str:
    return "exp_" + secrets.token_hex(4)


def _split(label: str) -> tuple[str, int]:
    dep, _, ver = label.rpartition(":")
    return dep, int(ver)


def experiment_of(row: Mapping[str, Any]) -> Experiment:
    """The strategy-independent view of a stored experiment."""
    config = row["config"]
    return Experiment(
        id=row["id"], endpoint=row["endpoint"], strategy=row["strategy"],
        variants=tuple(config["variants"]), labels=dict(config["variants"]),
        control=config["control"], salt=str(config.get("salt", "")),
        alpha=float(config.get("alpha", 0.05)), metrics=config.get("metrics") or {},
        auto=config.get("auto") or {}, status=row["status"],
        created_at=float(row["created_at"]), started_at=row["started_at"])


def loaded(row: Mapping[str, Any]) -> tuple[Strategy[Any], Any, Experiment]:
    """The row's strategy, its parsed settings and the experiment (SettingsError if the
    strategy is not installed here)."""
    strategy = get_strategy(row["strategy"])
    exp = experiment_of(row)
    settings = strategy.settings(row["config"].get(strategy.name) or {}, exp)
    return strategy, settings, exp


def build_active(row: Mapping[str, Any]) -> Active:
    strategy, settings, exp = loaded(row)
    state = dict(row["state"] or {})
    arms = {name: Arm(name, *_split(label)) for name, label in exp.labels.items()}
    return Active(row["id"], row["endpoint"], row["status"], strategy, settings, state,
                  int(row.get("state_version") or 0), exp,
                  strategy.policy(settings, state, exp), arms)


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    config = row["config"]
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "endpoint": row["endpoint"],
        "strategy": row["strategy"],
        "status": row["status"],
        "variants": config["variants"],
        "control": config.get("control"),
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "started_at": row["started_at"],
        "stopped_at": row["stopped_at"],
        "decision": row["decision"],
        "metrics": config.get("metrics", {}),
        "auto": config.get("auto", {}),
        "alpha": config.get("alpha", 0.05),
        "state_version": int(row.get("state_version") or 0),
    }
    try:
        strategy, settings, exp = loaded(row)
    except SettingsError as exc:
        out["error"] = f"cannot read this experiment here: {exc}"
        return out
    out.update(strategy.describe(settings, dict(row["state"] or {}), exp))
    return out


def _bad(exc: SettingsError) -> BadRequest:
    return BadRequest(str(exc), field=exc.field)


def _alpha(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw < 0.5:
        raise BadRequest("'alpha' must be a number between 0 and 0.5", field="alpha")
    return float(raw)


def _metrics(raw: Any) -> dict[str, Any]:
    metrics = raw or {}
    if not isinstance(metrics, dict):
        raise BadRequest("'metrics' is an object: primary, guardrails, covariate",
                         field="metrics")
    unknown = set(metrics) - {"primary", "guardrails", "covariate"}
    if unknown:
        raise BadRequest(f"unknown key metrics.{sorted(unknown)[0]}; known: primary, "
                         "guardrails, covariate", field="metrics")
    for key in ("primary", "covariate"):
        if metrics.get(key) is not None and not isinstance(metrics[key], str):
            raise BadRequest(f"metrics.{key} is a feedback metric's name", field="metrics")
    guardrails = metrics.get("guardrails") or []
    if not isinstance(guardrails, list):
        raise BadRequest("metrics.guardrails is a list", field="metrics")
    for g in guardrails:
        if (not isinstance(g, dict) or not isinstance(g.get("metric"), str)
                or g.get("bad", "decrease") not in ("decrease", "increase")):
            raise BadRequest("each guardrail is {\"metric\": NAME, \"bad\": "
                             "\"decrease\"|\"increase\"}", field="metrics")
    return metrics


def _auto(raw: Any) -> dict[str, Any]:
    if raw is None or raw is False:
        return {"enabled": False, "min_units": 100}
    if raw is True:
        raw = {"enabled": True}
    if not isinstance(raw, dict):
        raise BadRequest("'auto' is true, false or {\"enabled\": true, \"min_units\": N}",
                         field="auto")
    min_units = raw.get("min_units", 100)
    if isinstance(min_units, bool) or not isinstance(min_units, int) or not (
            1 <= min_units <= 10**9):
        raise BadRequest("auto.min_units is a whole number of units >= 1", field="auto")
    return {"enabled": bool(raw.get("enabled")), "min_units": min_units}


class Experiments:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.store = registry.store

    # ------------------------------------------------------------ create

    async def _arm(self, endpoint: str, name: str, spec: Any) -> Arm:
        if not isinstance(name, str) or not ARM_RE.match(name):
            raise BadRequest(f"invalid variant name {name!r}: start with a letter; letters, "
                             "digits, '_', '-', '.'")
        if isinstance(spec, int) and not isinstance(spec, bool):
            dep, ref = endpoint, str(spec)
        elif isinstance(spec, str) and spec:
            dep, sep, ref = spec.rpartition(":")
            if not sep:
                dep, ref = endpoint, spec
        else:
            raise BadRequest(f"variant {name!r}: give a version as 'deployment:version' "
                             "(or an alias), or a version number of the endpoint")
        target = await self.registry.resolve(dep, ref)  # pinned: aliases move, arms do not
        return Arm(name, dep, target.version)

    async def create(self, body: Mapping[str, Any], actor: str) -> dict[str, Any]:
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str) or not await self.registry.exists(endpoint):
            raise NotFound(f"no deployment named {endpoint!r} to attach an experiment to")
        try:
            strategy = get_strategy(body.get("strategy", "ab"))
        except SettingsError as exc:
            raise _bad(exc) from None
        legacy = set(strategy.legacy(body))
        unknown = sorted(set(body) - COMMON_KEYS - legacy - {strategy.name}
                         - {k for k in body if k in ("weights", "percent", "coverage", "kind")
                            and body[k] is None})
        if unknown:
            other = [k for k in unknown if k in STRATEGIES]
            if other:
                raise BadRequest(f"settings for {other[0]!r} given, but this experiment's "
                                 f"strategy is {strategy.name!r}", field=other[0])
            raise BadRequest(f"unknown field {unknown[0]!r}; an experiment takes "
                             f"{', '.join(sorted(COMMON_KEYS))} and its strategy's settings "
                             f"under {strategy.name!r}", field=unknown[0])
        variants = body.get("variants")
        low, high = strategy.min_variants, strategy.max_variants
        words = {1: "one", 2: "two", 3: "three"}
        count = (words.get(low, str(low)) if high == low else
                 f"at least {words.get(low, low)}" if high is None else f"{low} to {high}")
        if not isinstance(variants, dict) or not low <= len(variants) <= (high or 10**6):
            raise BadRequest(f"'variants' maps {count} variant names to versions (strategy "
                             f"{strategy.name}), e.g. "
                             '{"control": "churn:1", "candidate": "churn:2"}', field="variants")
        if len(variants) > 100:
            raise BadRequest("at most 100 variants", field="variants")
        arms = [await self._arm(endpoint, n, s) for n, s in variants.items()]
        names = [a.name for a in arms]
        control = body.get("control", names[0])
        if control not in names:
            raise BadRequest(f"control {control!r} is not one of the variants {names}",
                             field="control")
        names.remove(control)
        names.insert(0, control)
        by_name = {a.name: a for a in arms}
        salt = body.get("salt") or secrets.token_hex(8)
        if not isinstance(salt, (str, int)) or isinstance(salt, bool) or "|" in str(salt) or (
                len(str(salt)) > 64):
            raise BadRequest("'salt' is a string of at most 64 characters without '|'",
                             field="salt")
        name = body.get("name") or ""
        if not isinstance(name, str):
            raise BadRequest("'name' is a string", field="name")
        own = body.get(strategy.name)
        if own is not None and not isinstance(own, dict):
            raise BadRequest(f"{strategy.name!r} holds the strategy's settings as an object",
                             field=strategy.name)
        config: dict[str, Any] = {
            "variants": {n: by_name[n].label for n in names},
            "control": control,
            "salt": str(salt),
            "alpha": _alpha(body.get("alpha", 0.05)),
            "metrics": _metrics(body.get("metrics")),
            "auto": _auto(body.get("auto")),
        }
        now = time.time()
        row: dict[str, Any] = {
            "id": new_id(), "name": name[:128], "endpoint": endpoint,
            "strategy": strategy.name, "status": "draft", "config": config, "state": {},
            "active_endpoint": None, "created_at": now, "created_by": actor,
            "started_at": None, "stopped_at": None, "decision": None, "state_version": 0,
        }
        exp = experiment_of(row)
        try:
            settings = strategy.settings({**strategy.legacy(body), **(own or {})}, exp)
            state = strategy.initial_state(settings, exp)
            strategy.policy(settings, state, exp)  # it must route
        except SettingsError as exc:
            raise _bad(exc) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise BadRequest(f"invalid {strategy.name} experiment: {exc}") from None
        config[strategy.name] = strategy.dump(settings)
        row["state"] = state
        if body.get("start") and self.registry.experiment_for(endpoint) is not None:
            running = self.registry.experiment_for(endpoint)
            raise Conflict(f"endpoint {endpoint!r} already has a running experiment "
                           f"{running.id if running else ''}; stop it first",
                           experiment=running.id if running else None)
        await asyncio.to_thread(self.store.create_experiment, row, actor)
        if body.get("start"):
            return await self.transition(row["id"], "start", actor, str(body.get("reason", "")))
        return await self.get(row["id"])

    # ------------------------------------------------------------ reads

    async def _row(self, experiment_id: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.get_experiment, experiment_id)
        if row is None:
            raise NotFound(f"no experiment {experiment_id!r}")
        return row

    async def get(self, experiment_id: str) -> dict[str, Any]:
        return public(await self._row(experiment_id))

    async def find(self, endpoint: str | None = None,
                   status: str | None = None) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self.store.list_experiments, endpoint, status)
        return [public(r) for r in rows]

    async def history(self, experiment_id: str) -> list[dict[str, Any]]:
        await self._row(experiment_id)
        return await asyncio.to_thread(self.store.experiment_events, experiment_id)

    # ------------------------------------------------------------ changes

    async def transition(self, experiment_id: str, action: str, actor: str, reason: str = "",
                         decision: Mapping[str, Any] | None = None, *,
                         state: State | None = None, fence: Fence | None = None
                         ) -> dict[str, Any]:
        if action not in TRANSITIONS:
            raise BadRequest(f"unknown action {action!r}; one of {', '.join(TRANSITIONS)}")
        expect, to_status = TRANSITIONS[action]
        row = await self._row(experiment_id)
        promote = None
        stored: dict[str, Any] | None = dict(decision) if decision is not None else None
        if action == "stop":
            stored = stored or {"action": "keep"}
            promote = stored.get("promote")
            if promote is not None:
                label = row["config"]["variants"].get(promote)
                if label is None:
                    raise BadRequest(f"cannot promote {promote!r}: not a variant of "
                                     f"{experiment_id}")
                dep, version = _split(label)
                if dep != row["endpoint"]:
                    raise Conflict(f"cannot promote {promote!r} ({label}): production of "
                                   f"{row['endpoint']!r} can only point at its own versions")
                stored = {"action": "promote", "variant": promote, "version": version}
        try:
            updated = await asyncio.to_thread(
                self.store.transition_experiment, experiment_id, expect, to_status, actor,
                action, reason, stored or {}, decision=stored, state=state, fence=fence)
        except LookupError as exc:
            raise Conflict(f"cannot {action} experiment {experiment_id}: it is {exc.args[0]}"
                           ) from None
        except ExperimentConflict:
            running = self.registry.experiment_for(row["endpoint"])
            raise Conflict(f"endpoint {row['endpoint']!r} already has a running experiment "
                           f"{running.id if running else ''}; stop it first",
                           experiment=running.id if running else None) from None
        if promote is not None and stored is not None:
            await self.registry.set_alias(row["endpoint"], "production", stored["version"],
                                          actor, reason=f"experiment {experiment_id}: "
                                          f"promote {promote}")
        await self.registry.refresh(force=True)
        return public(updated)

    async def promote(self, experiment_id: str, variant: str | None, actor: str,
                      reason: str = "") -> dict[str, Any]:
        """Stop and promote ``variant`` (default: the one the strategy says is promotable)."""
        if variant is None:
            row = await self._row(experiment_id)
            try:
                strategy, settings, exp = loaded(row)
            except SettingsError as exc:
                raise _bad(exc) from None
            variant = strategy.promotable(settings, dict(row["state"] or {}), exp, None)
            if variant is None:
                raise BadRequest("name the variant to promote: {\"variant\": NAME}")
        return await self.transition(experiment_id, "stop", actor, reason or "promote",
                                     {"promote": variant})

    async def rollback(self, experiment_id: str, actor: str, reason: str = ""
                       ) -> dict[str, Any]:
        """Stop; production stays where it is (the candidates get no more traffic)."""
        return await self.transition(experiment_id, "stop", actor, reason or "rollback",
                                     {"action": "rollback"})

    async def reweight(self, experiment_id: str, weights: Mapping[str, float], actor: str,
                       reason: str = "") -> dict[str, Any]:
        row = await self._row(experiment_id)
        if row["status"] == "stopped":
            raise Conflict(f"experiment {experiment_id} is stopped")
        try:
            strategy, settings, exp = loaded(row)
            state = strategy.reweight(settings, dict(row["state"] or {}), exp, weights,
                                      time.time())
        except SettingsError as exc:
            raise _bad(exc) from None
        clean = {k: float(v) for k, v in weights.items()}
        if not all(math.isfinite(v) for v in clean.values()):
            raise BadRequest("weights are finite numbers", field="weights")
        try:
            await asyncio.to_thread(self.store.update_experiment_state, experiment_id,
                                    int(row["state_version"]), state, actor, "reweight",
                                    reason, {"weights": clean})
        except StateConflict:
            raise Conflict(f"experiment {experiment_id} changed meanwhile; try again") from None
        await self.registry.refresh_states()
        return await self.get(experiment_id)

    async def update(self, experiment_id: str, body: Mapping[str, Any], actor: str
                     ) -> dict[str, Any]:
        """Change an experiment that is not stopped: add variants (``add_variants``, as in
        create), remove some (``remove_variants``), change its strategy's settings (the
        object under its name, merged over the current ones), as far as its strategy's
        ``revise`` allows. Variants are only ever appended: a removed one stays in the list
        (what it served keeps its name) and the strategy stops routing to it."""
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise BadRequest("'reason' is a string", field="reason")
        for _ in range(5):  # the controller may move the state meanwhile: read it again
            row = await self._row(experiment_id)
            if row["status"] == "stopped":
                raise Conflict(f"experiment {experiment_id} is stopped")
            try:
                strategy, settings, exp = loaded(row)
            except SettingsError as exc:
                raise _bad(exc) from None
            unknown = sorted(set(body) - {"add_variants", "remove_variants", "reason",
                                          strategy.name})
            if unknown:
                raise BadRequest(f"unknown field {unknown[0]!r}; an update takes "
                                 f"add_variants, remove_variants, reason and the settings "
                                 f"under {strategy.name!r}", field=unknown[0])
            add = body.get("add_variants") or {}
            remove = body.get("remove_variants") or []
            own = body.get(strategy.name) or {}
            if not isinstance(add, dict):
                raise BadRequest("'add_variants' maps new variant names to versions",
                                 field="add_variants")
            if not isinstance(remove, list) or not all(isinstance(v, str) for v in remove):
                raise BadRequest("'remove_variants' is a list of variant names",
                                 field="remove_variants")
            if not isinstance(own, dict):
                raise BadRequest(f"{strategy.name!r} holds the strategy's settings as an "
                                 "object", field=strategy.name)
            if not (add or remove or own):
                raise BadRequest("nothing to change: give add_variants, remove_variants or "
                                 f"settings under {strategy.name!r}")
            config = dict(row["config"])
            variants = dict(config["variants"])
            for name, spec in add.items():
                if name in variants:
                    raise BadRequest(f"variant {name!r} already exists", field="add_variants")
                variants[name] = (await self._arm(row["endpoint"], name, spec)).label
            if len(variants) > 100:
                raise BadRequest("at most 100 variants", field="add_variants")
            for name in remove:
                if name not in variants or name in add:
                    raise BadRequest(f"cannot remove {name!r}: not a variant of "
                                     f"{experiment_id}", field="remove_variants")
            config["variants"] = variants
            new_exp = experiment_of({**row, "config": config})
            try:
                new_settings = strategy.settings({**strategy.dump(settings), **own}, new_exp)
                state = strategy.revise(settings, dict(row["state"] or {}), exp, new_settings,
                                        new_exp, tuple(remove), time.time())
                strategy.policy(new_settings, state, new_exp)  # it must still route
            except SettingsError as exc:
                raise _bad(exc) from None
            except (ValueError, TypeError, KeyError) as exc:
                raise BadRequest(f"invalid change of {experiment_id}: {exc}") from None
            config[strategy.name] = strategy.dump(new_settings)
            detail = {"added": {n: variants[n] for n in add}, "removed": list(remove),
                      "settings": own}
            try:
                await asyncio.to_thread(self.store.update_experiment_config, experiment_id,
                                        int(row["state_version"]), config, state, actor,
                                        "update", reason[:2000], detail)
            except StateConflict:
                continue
            await self.registry.refresh(force=True)
            return await self.get(experiment_id)
        raise Conflict(f"experiment {experiment_id} kept changing meanwhile; try again")

    async def apply_step(self, row: Mapping[str, Any], step: Step, actor: str,
                         fence: Fence | None = None) -> bool:
        """Carry out what a strategy's ``step`` returned (the controller's path). False when
        the experiment moved meanwhile (another writer won), so nothing was applied."""
        try:
            if step.action is not None:
                await self.transition(row["id"], step.action, actor, step.reason,
                                      step.decision, state=step.state, fence=fence)
            elif step.state is not None:
                await asyncio.to_thread(
                    self.store.update_experiment_state, row["id"], int(row["state_version"]),
                    step.state, actor, step.event, step.reason, {}, fence=fence)
                await self.registry.refresh_states()
        except (StateConflict, Conflict):
            return False
        return True
