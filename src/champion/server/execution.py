"""Running calls on a version's workers: the bridge from the request path to ``runtime/``.

The executor speaks the runtime interface (runtime/base.py): the same code runs versions on
local worker processes or as Ray Serve deployments (the ``runtime`` setting).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from champion.errors import InvalidInput
from champion.registry import Target
from champion.runtime.base import BaseRuntime
from champion.runtime.batching import TOO_DEEP as _TOO_DEEP
from champion.runtime.envs import EnvManager
from champion.runtime.pool import PoolSpec
from champion.server import environments
from champion.server.shapes import Call, worker_message
from champion.settings import Config


class Executor:
    """Turns a resolved version and its calls into worker calls, with the version's settings.

    Pool specs are built once per version and manifest (a deployment's settings change
    resolves to a new ``Target``, so to a new spec). A version with its own environment runs
    that environment's interpreter (``envs``); one still building answers 503.
    """

    def __init__(self, runtime: BaseRuntime, config: Config,
                 envs: EnvManager | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.envs = envs
        self.specs: dict[tuple[str, int], PoolSpec] = {}
        self.bg_specs: dict[tuple[str, int], PoolSpec] = {}

    def spec_for(self, target: Target) -> PoolSpec:
        key = (target.deployment, target.version)
        spec = self.specs.get(key)
        own = (environments.worker_for(self.envs, target)
               if target.environment or target.status != "ready" else None)
        if spec is None or spec.manifest is not target.manifest or (
                spec.python != (own.python if own else None)):
            cfg = target.config
            spec = PoolSpec(
                key=key,
                manifest=target.manifest,
                workers=max(1, int(cfg.get("workers", self.config.workers))),
                max_workers=cfg.get("max_workers", self.config.max_workers or None),
                timeout=float(cfg.get("timeout", self.config.timeout)),
                idle_timeout=cfg.get("idle_timeout"),
                batch_max_size=int(cfg.get("batch_max_size", 0)),
                batch_max_wait_ms=float(cfg.get("batch_max_wait_ms", 0.0)),
                python=own.python if own else None,
                environ=own.environ if own else None,
                env_id=own.env_id if own else None,
            )
            self.specs[key] = spec
        return spec

    def background_spec(self, spec: PoolSpec) -> PoolSpec:
        bg = self.bg_specs.get(spec.key)
        if bg is None or bg.manifest is not spec.manifest:
            bg = self.bg_specs[spec.key] = dataclasses.replace(spec, nice=10)
        return bg

    async def run(self, target: Target, calls: list[Call], ids: list[Any] | None,
                  timeout: float | None = None, *, background: bool = False) -> bytes:
        """Run ``calls`` on ``target``'s workers; the answer's JSON ``data`` as bytes.

        ``background`` (shadow calls): in the version's background pool, at lower priority.
        """
        spec = self.spec_for(target)
        if background:
            spec = self.background_spec(spec)
        if spec.batch_max_size > 1 and not target.manifest.get("dataframe"):
            if any(len(args) != 1 or kwargs for args, kwargs in calls):
                raise InvalidInput("micro-batching is on for this deployment: its function "
                                   "takes one parameter (a list of inputs)")
            # the batcher writes the inputs once (InvalidInput if they are nested too deeply)
            outputs = await self.runtime.call_batched(spec, [args[0] for args, _ in calls])
            if ids is None:
                return orjson.dumps(outputs[0], option=orjson.OPT_NON_STR_KEYS)
            return orjson.dumps([[i, y] for i, y in zip(ids, outputs, strict=True)],
                                option=orjson.OPT_NON_STR_KEYS)
        try:
            message = orjson.dumps(worker_message(target.manifest, calls, ids))
        except orjson.JSONEncodeError:  # read at up to 1024 levels, written at up to 254
            raise InvalidInput(_TOO_DEEP) from None
        return await self.runtime.call(spec, message, timeout)
