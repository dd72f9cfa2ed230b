"""Deployments, versions and aliases: the domain rules, over the store.

The inference path asks ``resolve`` for a (deployment, version-or-alias) and is answered
from memory; every write bumps the store's generation counter, which each server process
polls, so a change made through any replica is seen by all within ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import importlib.util
import logging
import platform
import re
import time
from dataclasses import dataclass
from typing import Any

from champion.deployment_settings import check_config
from champion.errors import BadRequest, Conflict, DeployError, NotFound
from champion.registry.experiments import Active, Experiments, build_active
from champion.store import Store

log = logging.getLogger("champion.registry")

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
RESERVED_ALIASES = frozenset({"latest"})


@dataclass(frozen=True)
class Target:
    """A resolved version, as the inference path needs it."""

    deployment: str
    version: int
    manifest: dict[str, Any]
    signature: tuple[dict[str, Any], ...]
    config: dict[str, Any]
    status: str = "ready"  # building | failed: not served yet (its environment)
    status_message: str = ""
    environment: dict[str, Any] | None = None  # its own environment (runtime/envs.py)

    @functools.cached_property
    def label(self) -> str:  # read several times per request: made once
        return f"{self.deployment}:{self.version}"


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._aliases: dict[str, dict[str, int]] | None = None
        self._versions: dict[tuple[str, int], Target] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._generation = -1
        self._lock = asyncio.Lock()
        self._active: dict[str, Active] = {}
        self._last_miss_check = 0.0
        self.experiments = Experiments(self)

    # ------------------------------------------------------------ cache

    async def refresh(self, force: bool = False) -> bool:
        """Reload aliases when the store changed. Returns whether anything changed."""
        generation = await asyncio.to_thread(self.store.generation)
        if not force and generation == self._generation and self._aliases is not None:
            return False
        async with self._lock:
            aliases = await asyncio.to_thread(self.store.all_aliases)
            deployments = await asyncio.to_thread(self.store.list_deployments)
            active = await asyncio.to_thread(self.store.active_experiments)
            self._active = self._build(active)
            self._aliases = aliases
            self._configs = {d["name"]: dict(d["config"] or {}) for d in deployments}
            live = set(aliases)
            self._versions = {
                k: v
                for k, v in self._versions.items()
                if k[0] in live and v.config == self._configs.get(k[0], {})
                and v.status == "ready"  # a version being built is read again
            }
            self._generation = generation
        return True

    @staticmethod
    def _build(rows: list[dict[str, Any]]) -> dict[str, Active]:
        built: dict[str, Active] = {}
        for row in rows:
            try:
                built[row["endpoint"]] = build_active(row)
            except Exception:
                log.exception("cannot route experiment %s; serving production", row["id"])
        return built

    async def refresh_states(self) -> bool:
        """Follow the hot state of running experiments (a canary's step, a bandit's
        allocation) without reloading the registry: only experiments whose state version
        moved are rebuilt. Returns whether anything changed."""
        versions = await asyncio.to_thread(self.store.active_state_versions)
        current = {a.id: a for a in self._active.values()}
        if set(versions) != set(current):
            return await self.refresh(force=True)
        stale = [i for i, v in versions.items() if current[i].state_version != v]
        if not stale:
            return False
        async with self._lock:
            rows = [await asyncio.to_thread(self.store.get_experiment, i) for i in stale]
            rebuilt = self._build([r for r in rows if r is not None])
            self._active = {**self._active, **rebuilt}
        return True

    def experiment_for(self, endpoint: str) -> Active | None:
        """The endpoint's running or paused experiment, from memory."""
        return self._active.get(endpoint)

    async def exists(self, name: str) -> bool:
        """Whether deployment ``name`` exists (from the cache, refreshed when absent)."""
        if name in await self._alias_map():
            return True
        await self.refresh()
        return name in await self._alias_map()

    def known(self, name: str) -> bool:
        """Whether the cache knows deployment ``name`` (no store access: for the hot path)."""
        return self._aliases is not None and name in self._aliases

    async def names(self) -> set[str]:
        return set(await self._alias_map())

    async def _alias_map(self) -> dict[str, dict[str, int]]:
        if self._aliases is None:
            await self.refresh(force=True)
        assert self._aliases is not None
        return self._aliases

    async def _refresh_on_miss(self) -> bool:
        """A name or alias the cache does not know may have just been made through another
        server sharing the store: check the store's generation (one cheap query, at most
        every 50 ms, so that made-up names cannot flood the store)."""
        now = time.monotonic()
        if now - self._last_miss_check < 0.05:
            return False
        self._last_miss_check = now
        return await self.refresh()

    def cached(self, name: str, number: int) -> Target | None:
        """Version ``number`` of ``name`` if the cache holds it (no store access)."""
        if self._aliases is None or name not in self._aliases:
            return None
        return self._versions.get((name, number))

    async def resolve(self, name: str, ref: str = "production") -> Target:
        """The version that ``name``/``ref`` (a number or an alias) names right now."""
        aliases = (await self._alias_map()).get(name)
        if (aliases is None or (not ref.isdigit() and ref not in aliases)) and (
                await self._refresh_on_miss()):
            aliases = (await self._alias_map()).get(name)
        if aliases is None:
            raise NotFound(f"no deployment named {name!r}", deployment=name)
        if ref.isdigit():
            number = int(ref)
        else:
            found = aliases.get(ref)
            if found is None:
                # not the list of aliases: the caller may be anonymous (the admin API
                # lists them)
                raise NotFound(f"deployment {name!r} has no alias {ref!r}", deployment=name)
            number = found
        target = self._versions.get((name, number))
        if target is None:
            row = await asyncio.to_thread(self.store.get_version, name, number)
            if row is None:
                raise NotFound(f"deployment {name!r} has no version {number}", deployment=name)
            target = Target(
                deployment=name,
                version=number,
                manifest=row["manifest"],
                signature=tuple(row["manifest"].get("signature", ())),
                config=self._configs.get(name, {}),
                status=row.get("status") or "ready",
                status_message=row.get("status_message") or "",
                environment=row.get("environment"),
            )
            self._versions[(name, number)] = target
        return target

    # ------------------------------------------------------------ deploy

    def check_manifest(self, manifest: dict[str, Any], *, own_environment: str | None = None
                       ) -> list[str]:
        """Refuse what this server cannot run. Returns warnings.

        ``own_environment``: the Python version of the environment the version will get
        (runtime/envs.py); its packages are then checked by building it, not here.
        """
        warnings: list[str] = []
        for key in ("function_name", "values", "files", "imports", "helpers", "signature"):
            if key not in manifest:
                raise BadRequest(f"deploy manifest lacks {key!r}")
        digests = list(manifest["values"].values()) + list(manifest["files"].values())
        if manifest.get("function_pickle"):
            digests.append(manifest["function_pickle"])
        for digest in digests:
            if not isinstance(digest, str) or not self.store.artifacts.has(digest):
                raise BadRequest(f"artifact {digest!r} has not been uploaded")
        local_tops = {f.split("/", 1)[0].removesuffix(".py") for f in manifest["files"]}
        packages: dict[str, str] = manifest.get("packages", {})
        if own_environment is not None:
            return self._check_python(manifest, own_environment, warnings)
        for module in manifest.get("modules", []):
            if module.split(".")[0] in local_tops:
                continue
            # The top-level name only: finding a.b imports a (runs its code) in the server,
            # and only workers may load code.
            if importlib.util.find_spec(module.split(".")[0]) is None:
                dists = ", ".join(f"{d}=={v}" for d, v in packages.items()) or module
                raise DeployError(
                    f"cannot deploy: the function needs package {module!r}, which is not "
                    f"installed on the server (the client has: {dists}); install it where "
                    "champion serve runs",
                    package=module,
                )
        for dist, wanted in packages.items():
            try:
                have = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue  # a module without distribution metadata: checked above by import
            if wanted and have != wanted:
                warnings.append(
                    f"the function was captured with {dist}=={wanted}; the server has {have}"
                )
        return self._check_python(manifest, platform.python_version(), warnings)

    @staticmethod
    def _check_python(manifest: dict[str, Any], runs_on: str, warnings: list[str]
                      ) -> list[str]:
        ours = ".".join(runs_on.split(".")[:2])
        theirs = ".".join(str(manifest.get("python_version", ours)).split(".")[:2])
        if theirs != ours:
            message = (
                f"the function was captured on Python {theirs} but the server runs "
                f"Python {ours}"
            )
            if manifest.get("function_pickle"):
                raise DeployError(
                    f"cannot deploy: {message}, and it had to be pickled by value, which "
                    "does not carry across Python versions"
                )
            warnings.append(message)
        return warnings

    async def set_status(self, name: str, number: int, status: str, message: str = "",
                         environment: dict[str, Any] | None = None) -> None:
        await asyncio.to_thread(self.store.set_version_status, name, number, status,
                                message, environment)
        self._versions.pop((name, number), None)
        await self.refresh(force=True)

    async def add_version(self, name: str, manifest: dict[str, Any], fields: dict[str, Any],
                          config: dict[str, Any], actor: str) -> tuple[int, bool]:
        number, moved = await asyncio.to_thread(
            self.store.add_version, name, actor, fields, config
        )
        await self.refresh(force=True)
        return number, moved

    # ------------------------------------------------------------ aliases

    async def set_alias(self, name: str, alias: str, version: int, actor: str,
                        reason: str = "") -> int | None:
        if alias in RESERVED_ALIASES:
            raise BadRequest(f"alias {alias!r} is managed by champion and cannot be moved")
        if alias == "feedback":
            raise BadRequest("'feedback' cannot be an alias: /v1/NAME/feedback takes feedback")
        if not ALIAS_RE.match(alias) or alias.isdigit():
            raise BadRequest(
                f"invalid alias {alias!r}: start with a letter; letters, digits, '_', '-', '.'"
            )
        await self._require_version(name, version)
        current = (await self._alias_map()).get(name, {}).get(alias)
        if current == version:
            return current  # already there: nothing to record
        before = await asyncio.to_thread(
            self.store.set_alias, name, alias, version, actor, reason
        )
        await self.refresh(force=True)
        return before

    async def delete_alias(self, name: str, alias: str, actor: str) -> None:
        if alias in ("latest", "production"):
            raise BadRequest(f"alias {alias!r} cannot be removed")
        await self._require_deployment(name)
        if not await asyncio.to_thread(self.store.delete_alias, name, alias, actor):
            raise NotFound(f"deployment {name!r} has no alias {alias!r}")
        await self.refresh(force=True)

    async def rollback(self, name: str, version: int | None, actor: str) -> tuple[int, int]:
        """Move production to ``version``, or to the version it pointed at before."""
        aliases = await self._require_deployment(name)
        current = aliases.get("production")
        if version is None:
            history = await asyncio.to_thread(self.store.history, name, 1000)
            version = None
            for entry in history:
                detail = entry["detail"] or {}
                if (
                    entry["action"] == "alias"
                    and detail.get("alias") == "production"
                    and detail.get("version") == current
                    and detail.get("previous") is not None
                ):
                    version = int(detail["previous"])
                    break
            if version is None:
                older = [
                    v["number"]
                    for v in await asyncio.to_thread(self.store.list_versions, name)
                    if current is not None and v["number"] < current
                ]
                if not older:
                    raise Conflict(
                        f"deployment {name!r} has no earlier production version to roll back to"
                    )
                version = max(older)
        if current is not None and version == current:
            raise Conflict(f"production of {name!r} is already version {version}")
        await self.set_alias(name, "production", version, actor, reason="rollback")
        return current or 0, version

    # ------------------------------------------------------------ reads

    async def _require_deployment(self, name: str) -> dict[str, int]:
        await self.refresh()
        aliases = (await self._alias_map()).get(name)
        if aliases is None:
            raise NotFound(f"no deployment named {name!r}", deployment=name)
        return aliases

    async def _require_version(self, name: str, version: int) -> None:
        await self._require_deployment(name)
        row = await asyncio.to_thread(self.store.get_version, name, version)
        if row is None:
            raise NotFound(f"deployment {name!r} has no version {version}")

    async def deployment(self, name: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.get_deployment, name)
        if row is None:
            raise NotFound(f"no deployment named {name!r}", deployment=name)
        aliases = await asyncio.to_thread(self.store.get_aliases, name)
        versions = await asyncio.to_thread(self.store.list_versions, name)
        return {
            "name": row["name"],
            "created_at": row["created_at"],
            "created_by": row["created_by"],
            "config": row["config"] or {},
            "aliases": aliases,
            "versions": versions,
        }

    async def version(self, name: str, number: int) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.get_version, name, number)
        if row is None:
            await self._require_deployment(name)
            raise NotFound(f"deployment {name!r} has no version {number}")
        aliases = await asyncio.to_thread(self.store.get_aliases, name)
        manifest = row["manifest"]
        return {
            "deployment": name,
            "version": number,
            "created_at": row["created_at"],
            "created_by": row["created_by"],
            "function_name": row["function_name"],
            "python_version": row["python_version"],
            "packages": row["packages"],
            "source": row["source"],
            "aliases": sorted(a for a, v in aliases.items() if v == number),
            "signature": manifest.get("signature", []),
            "values": {
                k: {"sha256": d, "type": manifest.get("value_types", {}).get(k, "")}
                for k, d in manifest.get("values", {}).items()
            },
            "files": manifest.get("files", {}),
            "pickled_function": bool(manifest.get("function_pickle")),
            "status": row.get("status") or "ready",
            "status_message": row.get("status_message") or "",
            "environment": row.get("environment"),
            "origin": row.get("origin"),
            "requirements": manifest.get("requirements"),
            "python_request": manifest.get("python_request"),
            "dataframe_columns": manifest.get("dataframe"),
            "tags": manifest.get("tags", []),
            "manifest": manifest,
        }

    async def delete(self, name: str, actor: str) -> None:
        if not await asyncio.to_thread(self.store.delete_deployment, name, actor):
            raise NotFound(f"no deployment named {name!r}", deployment=name)
        await self.refresh(force=True)

    async def configure(self, name: str, config: dict[str, Any], actor: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.get_deployment, name)
        if row is None:
            raise NotFound(f"no deployment named {name!r}", deployment=name)
        checked = check_config(config)
        merged = {**(row["config"] or {}), **checked}
        for key, value in config.items():
            if value is None:
                merged.pop(key, None)
        await asyncio.to_thread(self.store.update_deployment_config, name, merged, actor)
        await self.refresh(force=True)
        return merged
