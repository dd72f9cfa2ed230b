"""Experiments: a traffic policy attached to an endpoint, and its lifecycle.

draft -> running <-> paused -> stopped (from any state but stopped). At most one experiment is
running or paused per endpoint (the store enforces it). Every transition is recorded with
when, who and why; stopping may promote a variant, which moves the endpoint's
``production`` alias.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from champion.errors import BadRequest, Conflict, NotFound
from champion.routing import ABPolicy, RoutingPolicy, create_policy
from champion.store.experiments import ExperimentConflict

if TYPE_CHECKING:
    from champion.registry.service import Registry

STRATEGIES = ("ab", "shadow")
ARM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "stop": (("draft", "running", "paused"), "stopped"),
}


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
    strategy: str
    status: str
    policy: RoutingPolicy
    arms: dict[str, Arm]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


def new_id() -> str:
    return "exp_" + secrets.token_hex(4)


def build_active(row: Mapping[str, Any]) -> Active:
    config = row["config"]
    arms = {name: Arm(name, *_split(label)) for name, label in config["variants"].items()}
    policy = create_policy(row["strategy"], _policy_config(row))
    return Active(row["id"], row["endpoint"], row["strategy"], row["status"], policy, arms,
                  config)


def _policy_config(row: Mapping[str, Any]) -> dict[str, Any]:
    state = {k: v for k, v in (row["state"] or {}).items() if k in ("weights", "owner_runs")}
    return {**row["config"]["policy"], **state}


def _split(label: str) -> tuple[str, int]:
    dep, _, ver = label.rpartition(":")
    return dep, int(ver)


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    config = row["config"]
    out = {
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
    }
    if row["strategy"] == "ab":
        policy = _policy_config(row)
        out["weights"] = dict(zip(policy["variants"], policy["weights"], strict=True))
    if row["strategy"] == "shadow":
        out["shadow"] = config.get("shadow", {})
    return out


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
        strategy = body.get("strategy", "ab")
        if strategy not in STRATEGIES:
            raise BadRequest(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
        variants = body.get("variants")
        if not isinstance(variants, dict) or len(variants) < 2:
            raise BadRequest("'variants' maps at least two variant names to versions, e.g. "
                             '{"control": "churn:1", "candidate": "churn:2"}')
        arms = [await self._arm(endpoint, n, s) for n, s in variants.items()]
        names = [a.name for a in arms]
        control = body.get("control", names[0])
        if control not in names:
            raise BadRequest(f"control {control!r} is not one of the variants {names}")
        names.remove(control)
        names.insert(0, control)
        by_name = {a.name: a for a in arms}
        salt = str(body.get("salt") or secrets.token_hex(8))
        alpha = float(body.get("alpha", 0.05))
        if not 0 < alpha < 0.5:
            raise BadRequest("'alpha' must be between 0 and 0.5")
        metrics = body.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise BadRequest("'metrics' is an object: primary, guardrails, covariate")
        for g in metrics.get("guardrails", []) or []:
            if not isinstance(g, dict) or "metric" not in g or g.get("bad", "decrease") not in (
                    "decrease", "increase"):
                raise BadRequest("each guardrail is {\"metric\": NAME, \"bad\": "
                                 "\"decrease\"|\"increase\"}")
        auto = body.get("auto") or {}
        if auto.get("enabled") and not metrics.get("primary"):
            raise BadRequest("automatic decisions need metrics.primary")
        config: dict[str, Any] = {
            "variants": {n: by_name[n].label for n in names},
            "control": control,
            "alpha": alpha,
            "metrics": metrics,
            "auto": {"enabled": bool(auto.get("enabled")), "min_units": int(
                auto.get("min_units", 100))},
        }
        try:
            if strategy == "ab":
                weights_in = body.get("weights") or {n: 1 for n in names}
                if set(weights_in) != set(names):
                    raise BadRequest(f"'weights' needs one weight per variant: {names}")
                policy = create_policy("ab", {
                    "variants": names, "weights": [float(weights_in[n]) for n in names],
                    "salt": salt})
            else:
                shadow = body.get("shadow") or {}
                percent = float(shadow.get("percent", body.get("percent", 100.0)))
                policy = create_policy("shadow", {
                    "primary": control, "shadows": names[1:], "percent": percent,
                    "salt": salt, "sample_by": shadow.get("sample_by", "request")})
                config["shadow"] = {"percent": percent, "kind": shadow.get("kind", "auto"),
                                    "field": shadow.get("field")}
        except (ValueError, TypeError, KeyError) as exc:
            raise BadRequest(f"invalid experiment: {exc}") from None
        config["policy"] = policy.to_config()
        row = {
            "id": new_id(),
            "name": str(body.get("name") or "")[:128],
            "endpoint": endpoint,
            "strategy": strategy,
            "status": "draft",
            "config": config,
            "state": {},
            "active_endpoint": None,
            "created_at": time.time(),
            "created_by": actor,
        }
        if body.get("start") and self.registry.experiment_for(endpoint) is not None:
            raise Conflict(f"endpoint {endpoint!r} already has a running experiment; "
                           "stop it first")
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
                         decision: dict[str, Any] | None = None) -> dict[str, Any]:
        if action not in TRANSITIONS:
            raise BadRequest(f"unknown action {action!r}; one of {', '.join(TRANSITIONS)}")
        expect, to_status = TRANSITIONS[action]
        row = await self._row(experiment_id)
        promote = None
        if action == "stop":
            decision = decision or {"action": "keep"}
            promote = decision.get("promote")
            if promote is not None:
                label = row["config"]["variants"].get(promote)
                if label is None:
                    raise BadRequest(f"cannot promote {promote!r}: not a variant of "
                                     f"{experiment_id}")
                dep, version = _split(label)
                if dep != row["endpoint"]:
                    raise Conflict(f"cannot promote {promote!r} ({label}): production of "
                                   f"{row['endpoint']!r} can only point at its own versions")
                decision = {"action": "promote", "variant": promote, "version": version}
        try:
            updated = await asyncio.to_thread(
                self.store.transition_experiment, experiment_id, expect, to_status, actor,
                action, reason, decision or {}, decision=decision)
        except LookupError as exc:
            raise Conflict(f"cannot {action} experiment {experiment_id}: it is {exc.args[0]}"
                           ) from None
        except ExperimentConflict:
            raise Conflict(f"endpoint {row['endpoint']!r} already has a running experiment; "
                           "stop it first") from None
        if promote is not None and decision is not None:
            await self.registry.set_alias(row["endpoint"], "production", decision["version"],
                                          actor, reason=f"experiment {experiment_id}: "
                                          f"promote {promote}")
        await self.registry.refresh(force=True)
        return public(updated)

    async def reweight(self, experiment_id: str, weights: Mapping[str, float], actor: str,
                       reason: str = "") -> dict[str, Any]:
        row = await self._row(experiment_id)
        if row["strategy"] != "ab":
            raise BadRequest("only A/B experiments have weights")
        if row["status"] == "stopped":
            raise Conflict(f"experiment {experiment_id} is stopped")
        current = create_policy("ab", _policy_config(row))
        assert isinstance(current, ABPolicy)
        names = list(current.variants)
        if set(weights) != set(names):
            raise BadRequest(f"'weights' needs one weight per variant: {names}")
        try:
            new = current.reweighted([float(weights[n]) for n in names])
        except ValueError as exc:
            raise BadRequest(f"invalid weights: {exc}") from None
        # Units seen since now are all assigned under the new weights: the SRM check counts
        # those, against these weights.
        state = {"weights": list(new.weights), "owner_runs": new.to_config()["owner_runs"],
                 "reweighted_at": time.time()}
        status = row["status"]
        updated = await asyncio.to_thread(
            self.store.transition_experiment, experiment_id, (status,), status, actor,
            "reweight", reason, {"weights": dict(weights)}, state=state)
        await self.registry.refresh(force=True)
        return public(updated)
