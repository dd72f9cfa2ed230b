"""Versions in their own environments: the deploy job, readiness, and the admin routes.

A deploy whose packages (or Python) differ from the server's is recorded at once with the
status ``building``, and a job builds its environment (runtime/envs.py), loads the version
in it (the deploy's load check) and marks it ``ready``, or ``failed`` with the reason (uv's
message naming the package, or the load error). Until it is ready no call reaches it: the
inference path answers ``503 unavailable`` saying why. The client follows the job through
``GET /api/deployments/NAME/versions/N/build``.

A server that finds a ready version whose environment this machine lacks (another replica
built it, or it was collected) builds it in the background and answers 503 meanwhile; a
server restarted during a build takes the job up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from champion.errors import ChampionError, Unavailable
from champion.registry import Target
from champion.runtime.envs import BuildLog, EnvManager, EnvPlan, Resolved, plan_for
from champion.server.http import actor, check_ref, json_response, require_token

if TYPE_CHECKING:
    from champion.server.state import State

log = logging.getLogger("champion.server")


@dataclass
class Job:
    """One version's build, as the deploy's progress shows it."""

    deployment: str
    version: int
    started: float = field(default_factory=time.time)
    status: str = "building"
    phase: str = "resolving"  # resolving | environment | loading | done
    message: str = ""
    env_id: str | None = None
    log: BuildLog = field(default_factory=BuildLog)
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        end = self.finished or time.time()
        return {"deployment": self.deployment, "version": self.version,
                "status": self.status, "phase": self.phase, "message": self.message,
                "environment": self.env_id, "started_at": self.started,
                "seconds": round(end - self.started, 3), "log": list(self.log.lines)}


@dataclass(frozen=True)
class WorkerEnv:
    python: str
    environ: dict[str, str]
    env_id: str


def plan_of(record: dict[str, Any]) -> EnvPlan:
    """The plan a version's ``environment`` record describes."""
    return EnvPlan(str(record.get("python") or ""), tuple(record.get("requirements") or ()),
                   tuple(record.get("reasons") or ()), bool(record.get("strict_python", True)))


def record_of(plan: EnvPlan, resolved: Resolved) -> dict[str, Any]:
    return {"python": plan.python, "requirements": list(plan.requirements),
            "reasons": list(plan.reasons), "strict_python": plan.strict_python,
            "env_id": resolved.env_id, "interpreter": resolved.interpreter.version}


# ---------------------------------------------------------------------- the inference side


_preparing: dict[EnvPlan, asyncio.Task[Any]] = {}
_touched: dict[str, float] = {}


def worker_for(envs: EnvManager | None, target: Target) -> WorkerEnv | None:
    """The interpreter a version's workers run, or None for the server's own.

    Raises Unavailable (503) while the version is not ready, or while this machine builds
    the environment a ready version needs.
    """
    if target.status == "building":
        raise Unavailable(f"{target.label} is not ready yet: its environment is being "
                          "built; try again shortly", status="building")
    if target.status == "failed":
        # Not the build's message: it may hold the installer's output or the server's paths,
        # and this answer reaches anonymous callers. The admin API has the whole build.
        raise Unavailable(f"{target.label} cannot serve: building its environment failed "
                          f"(GET /api/deployments/{target.deployment}/versions/"
                          f"{target.version}/build has the log)", status="failed")
    if not target.environment or envs is None:
        return None
    plan = plan_of(target.environment)
    resolved = envs.cached(plan)
    if resolved is None and not plan.python:
        resolved = envs.resolve(plan)  # the server's Python: nothing to run, only hashing
    env = envs.ready(resolved.env_id) if resolved is not None else None
    if env is None:
        task = _preparing.get(plan)
        if task is None or task.done():
            _preparing[plan] = asyncio.create_task(_prepare(envs, plan))
        raise Unavailable(f"{target.label}: its environment is being built on this server "
                          "(from uv's cache or the package index); try again shortly",
                          status="building")
    now = time.monotonic()
    if now - _touched.get(env.env_id, 0.0) > 60:
        _touched[env.env_id] = now
        envs.touch(env.env_id)
    return WorkerEnv(env.python, envs.worker_environ(), env.env_id)


async def _prepare(envs: EnvManager, plan: EnvPlan) -> None:
    try:
        resolved = await asyncio.to_thread(envs.resolve, plan)
        await envs.start(resolved)
    except Exception:
        log.exception("cannot build an environment this server lacks")


# ---------------------------------------------------------------------- deploying


def plan_deploy(manifest: dict[str, Any]) -> EnvPlan | None:
    return plan_for(manifest)


async def deploy(st: State, request: Request, name: str, manifest: dict[str, Any],
                 fields: dict[str, Any], config: dict[str, Any], plan: EnvPlan,
                 validate: bool) -> Response:
    """Record the version as ``building`` and start its job; answer 202 at once."""
    assert st.envs is not None
    resolved = await asyncio.to_thread(st.envs.resolve, plan)  # DeployError: no such Python
    warnings = await asyncio.to_thread(st.registry.check_manifest, manifest,
                                       own_environment=resolved.interpreter.version)
    warnings += [f"the version gets its own environment: {r}" for r in plan.reasons[:5]]
    if len(plan.reasons) > 5:
        warnings.append(f"... and {len(plan.reasons) - 5} more differences")
    record = record_of(plan, resolved)
    fields = {**fields, "status": "building", "environment": record}
    number, production = await st.registry.add_version(name, manifest, fields, config,
                                                        actor(request))
    job = start_job(st, name, number, plan, validate)
    return json_response(
        {
            "deployment": name,
            "version": number,
            "production": production,
            "aliases": (await st.registry.version(name, number))["aliases"],
            "url": f"/v1/{name}/{number}",
            "endpoint": f"/v1/{name}",
            "status": "building",
            "build": job.to_dict(),
            "environment": record,
            "warnings": warnings,
        },
        status=202,
    )


def start_job(st: State, name: str, number: int, plan: EnvPlan, validate: bool = True) -> Job:
    job = st.builds.get((name, number))
    if job is not None and job.status == "building":
        return job
    job = st.builds[(name, number)] = Job(name, number)
    task = asyncio.create_task(_run_job(st, job, plan, validate))
    st.tasks.append(task)
    return job


async def _run_job(st: State, job: Job, plan: EnvPlan, validate: bool) -> None:
    assert st.envs is not None
    name, number = job.deployment, job.version
    try:
        resolved = await asyncio.to_thread(st.envs.resolve, plan)
        job.env_id = resolved.env_id
        job.phase = "environment"
        task = st.envs.start(resolved)
        job.log = st.envs.build_log(resolved.env_id)
        env = await asyncio.shield(task)
        if validate:
            job.phase = "loading"
            job.log("loading the version in its environment (the deploy's load check)")
            target = await st.registry.resolve(name, str(number))
            spec = st.executor.spec_for(dataclasses.replace(target, status="ready"))
            await st.runtime.warm(spec)
        record = {**record_of(plan, resolved),
                  **{k: env.info.get(k) for k in ("build_seconds", "bytes", "own_bytes",
                                                   "resolved", "installed_from")}}
        await st.registry.set_status(name, number, "ready", "", environment=record)
        job.status, job.phase = "ready", "done"
        job.log(f"{name}:{number} is ready")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        message = exc.message if isinstance(exc, ChampionError) else (
            f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, ChampionError):
            log.exception("building %s:%d failed", name, number)
        job.status, job.phase, job.message = "failed", "done", message
        job.log(f"failed: {message}")
        await st.runtime.stop((name, number))
        try:
            await st.registry.set_status(name, number, "failed", message)
        except Exception:
            log.exception("cannot record that %s:%d failed", name, number)
    finally:
        job.finished = time.time()


async def resume(st: State) -> None:
    """Take up the builds a previous run of the server left unfinished, and find the
    interpreters of the versions with their own Python before their first call."""
    try:
        assert st.envs is not None
        for record in await asyncio.to_thread(st.store.version_environments):
            plan = plan_of(record)
            if plan.python:
                with contextlib.suppress(ChampionError):
                    await asyncio.to_thread(st.envs.resolve, plan)
        pending = await asyncio.to_thread(st.store.versions_with_status, "building")
        for name, number in pending:
            target = await st.registry.resolve(name, str(number))
            if target.environment:
                log.info("resuming the build of %s", target.label)
                start_job(st, name, number, plan_of(target.environment))
    except Exception:
        log.exception("cannot resume unfinished builds")


# ---------------------------------------------------------------------- admin routes


async def build_status(request: Request) -> Response:
    """GET /api/deployments/{name}/versions/{ref}/build: the deploy job's progress."""
    st: State = request.app.state.champion
    require_token(request, st.token, "deploy")
    name = request.path_params["name"]
    target = await st.registry.resolve(name, check_ref(name, request.path_params["ref"]))
    job = st.builds.get((name, target.version))
    if job is not None:
        body = job.to_dict()
    else:
        info = await st.registry.version(name, target.version)
        body = {"deployment": name, "version": target.version, "status": info["status"],
                "phase": "done", "message": info["status_message"],
                "environment": (info["environment"] or {}).get("env_id"), "log": []}
    return json_response(body)


async def list_environments(request: Request) -> Response:
    """GET /api/environments: the environments this server has built, their size and use."""
    st: State = request.app.state.champion
    require_token(request, st.token)
    assert st.envs is not None
    envs = await asyncio.to_thread(st.envs.listing)
    return json_response({
        "environments": envs,
        "budget_bytes": st.envs.budget,
        "total_bytes": sum(int(e.get("bytes", 0)) for e in envs),
    })


def routes() -> list[Route]:
    return [
        Route("/api/deployments/{name}/versions/{ref}/build", build_status, methods=["GET"]),
        Route("/api/environments", list_environments, methods=["GET"]),
    ]
