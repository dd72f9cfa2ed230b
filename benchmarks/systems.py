"""The systems under test: one small class each, registered in SYSTEMS.

A system says how to start its server (``launch``), which URL path answers, how the two request
kinds look in its API (``body``), how to read the first prediction out of an answer
(``first_value``, used to check every system computes the same thing) and, when "ready" means
more than "the first POST answers 200", how to get there (``until_ready``). A new system, for
instance champion with an A/B or shadow experiment attached, is one more subclass here plus its
name in SYSTEMS: see ``Champion.setup_endpoint``.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from benchmarks import loadgen, venvs
from benchmarks import model as m

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


class Skip(Exception):
    """The system cannot run on this machine; the message says why."""


class StartFailed(Exception):
    pass


@dataclass
class Context:
    """What every system may use: the work directory and the model, made once per run."""

    work: Path
    model_pickle: Path
    bodies: dict[str, Any]  # champion-shaped request bodies: {"single": ..., "batch": ...}
    expected: dict[str, float]  # the in-process answer for the first row of each kind
    install_timeout: float
    token: str = "bench-token"


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO


def _dist_versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "-"
    return out


def wait_for_answer(port: int, path: str, body: bytes, proc: subprocess.Popen[bytes],
                    deadline: float) -> None:
    """Poll POST PATH until it answers 200 (the process dying or the deadline: StartFailed)."""
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartFailed(f"server exited with code {proc.returncode}")
        try:
            status, reply = loadgen.post(port, path, body, timeout=5)
            if status == 200:
                return
            last = f"HTTP {status}: {reply[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.01)
    raise StartFailed(f"no 200 from POST {path} in time (last: {last})")


class System:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    path: ClassVar[str] = "/predict"
    raw_latency: ClassVar[bool] = False  # also time sequential single requests (no wrk)
    kinds: ClassVar[tuple[str, ...]] = ("single", "batch")  # the request kinds it answers
    baseline: ClassVar[str | None] = None  # also print this system's figures as a ratio to
    startup_timeout: ClassVar[float] = 120.0

    def prepare(self, ctx: Context) -> None:
        """Once per run, before any start (install, convert the model); raise Skip if impossible."""

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        raise NotImplementedError

    def body(self, ctx: Context, kind: str) -> bytes:
        return m.dumps(ctx.bodies[kind])

    def first_value(self, kind: str, reply: Any) -> float:
        data = reply["data"]
        return float(data[0][1] if kind == "batch" else data)

    def until_ready(self, ctx: Context, port: int, t0: float,
                    proc: subprocess.Popen[bytes]) -> dict[str, float]:
        """Wait until the system answers; the timings of its start (seconds)."""
        wait_for_answer(port, self.path, self.body(ctx, "single"), proc,
                        time.monotonic() + self.startup_timeout)
        return {"cold_start_s": time.perf_counter() - t0}

    def versions(self) -> dict[str, str]:
        return {}


# ---------------------------------------------------------------------------- the floor


class Floor(System):
    name = "floor"
    title = "Starlette + uvicorn (uvloop, httptools), model in-process, 1 worker"
    workers: ClassVar[int] = 1
    raw_latency = True

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        return Launch(
            [sys.executable, "-m", "uvicorn", "benchmarks.servers.floor_app:app",
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers),
             "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--log-level", "warning"],
            env={"BENCH_MODEL_PICKLE": str(ctx.model_pickle)},
        )

    def versions(self) -> dict[str, str]:
        return _dist_versions("starlette", "uvicorn", "uvloop", "httptools", "orjson")


class Floor2(Floor):
    name = "floor-2w"
    title = "the floor with 2 uvicorn workers"
    workers = 2
    raw_latency = False


class FloorVectorised(Floor):
    """Not in the default run: the floor scoring a batch with one vectorised call."""

    name = "floor-vec"
    title = "the floor (1 worker) scoring a batch with one predict_proba call"
    raw_latency = False

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        launch = super().launch(ctx, port, run_id)
        launch.env["BENCH_FLOOR_BATCH"] = "vectorised"
        return launch


# ---------------------------------------------------------------------------- champion


class Champion(System):
    """``champion serve`` on a fresh data dir; the model deployed from this process."""

    name = "champion"
    title = "champion serve, endpoint /v1/bench with no experiment"
    path = "/v1/bench"
    deployment = "bench"
    raw_latency = True

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        data_dir = ctx.work / f"champion-data-{run_id}"
        return Launch(
            [sys.executable, "-m", "champion", "serve", "--port", str(port),
             "--data-dir", str(data_dir), "--log-level", "warning"],
            env={"CHAMPION_TOKEN": ctx.token},
        )

    def setup_endpoint(self, client: Any) -> None:
        """Make /v1/{deployment} answer. Experiment variants override this (deploy two
        versions, attach the experiment)."""
        client.deploy(m.predict, self.deployment)

    def until_ready(self, ctx: Context, port: int, t0: float,
                    proc: subprocess.Popen[bytes]) -> dict[str, float]:
        from champion.client import Client

        deadline = time.monotonic() + self.startup_timeout
        while True:
            if proc.poll() is not None:
                raise StartFailed(f"champion serve exited with code {proc.returncode}")
            try:
                if loadgen.get(port, "/readyz", timeout=5) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartFailed("champion serve: /readyz never answered 200")
            time.sleep(0.01)
        ready = time.perf_counter()
        with Client(f"http://127.0.0.1:{port}", ctx.token) as client:
            self.setup_endpoint(client)
        deployed = time.perf_counter()
        wait_for_answer(port, self.path, self.body(ctx, "single"), proc, deadline)
        answered = time.perf_counter()
        start = {
            "cold_start_s": answered - t0,
            "serve_ready_s": ready - t0,
            "deploy_s": deployed - ready,
            "deploy_first_answer_s": answered - ready,
        }
        if type(self) is Champion:  # the experiments' endpoints keep the versions they set
            start["next_deploy_first_answer_s"] = self._next_version(ctx, port, proc, deadline)
        return start

    def _next_version(self, ctx: Context, port: int, proc: subprocess.Popen[bytes],
                      deadline: float) -> float:
        """Seconds from a second deploy of the model to its first answer at its own URL,
        once the server has run a while: what deploying a new version costs, apart from the
        libraries' one-time import the first deploy after a start waits for."""
        from champion.client import Client

        time.sleep(2.0)  # the fork server has imported its libraries by now
        begun = time.perf_counter()
        with Client(f"http://127.0.0.1:{port}", ctx.token) as client:
            version = client.deploy(m.predict, self.deployment, progress=False)
        wait_for_answer(port, f"{self.path}/{version.version}", self.body(ctx, "single"),
                        proc, deadline)
        return time.perf_counter() - begun

    def versions(self) -> dict[str, str]:
        return _dist_versions("champion", "starlette", "uvicorn", "uvloop", "httptools")



def _warm(client: Any, exp: dict[str, Any]) -> None:
    """Ask for the new experiment's report once before any load: the server imports its
    statistics (scipy, ~0.6 s of CPU) on the first report, and a load point that ran while it
    did would measure a one-time import, not the experiment's running cost."""
    client.report(exp["id"])


class ChampionNoLog(Champion):
    name = "champion-nolog"
    title = "champion with the request log off (--no-request-log)"
    raw_latency = False

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        launch = super().launch(ctx, port, run_id)
        launch.argv.append("--no-request-log")
        return launch


class ChampionAB(Champion):
    name = "champion-ab"
    title = "champion, endpoint with a running 50/50 A/B experiment, request logging on"
    raw_latency = False

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.predict, self.deployment)
        client.deploy(m.predict, self.deployment)
        exp = client.create_experiment(self.deployment, "ab", {"control": 1, "candidate": 2})
        _warm(client, exp)


class ChampionBandit(Champion):
    """Three arms on one version, so that the server runs as many workers as ``champion``
    (three versions would bring three workers, which on a small machine serve faster for
    reasons unrelated to the experiment): the difference is the experiment's own work."""

    name = "champion-bandit"
    title = ("champion, endpoint with a running Thompson-sampling bandit over three arms "
             "(one version), re-allocated every second, request logging on")
    raw_latency = True

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.predict, self.deployment)
        exp = client.create_experiment(self.deployment, "bandit", {"a": 1, "b": 1, "c": 1},
                                       bandit={"update_seconds": 1, "decide_threshold": None})
        _warm(client, exp)


class ChampionShadow(Champion):
    name = "champion-shadow"
    title = "champion, endpoint with a shadow variant of equal cost (100 % mirrored)"
    raw_latency = True

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.predict, self.deployment)
        client.deploy(m.predict, self.deployment)
        exp = client.create_experiment(self.deployment, "shadow", {"live": 1, "shadow": 2})
        _warm(client, exp)


class ChampionCanary(Champion):
    name = "champion-canary"
    title = ("champion, endpoint with a running canary (candidate at 25 %, guardrails judged "
             "every second, request logging on)")
    raw_latency = False

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.predict, self.deployment)
        client.deploy(m.predict, self.deployment)
        # A step that never ends during the run: the canary keeps judging at 25 %.
        exp = client.create_experiment(self.deployment, "canary", {"stable": 1, "canary": 2},
                                       canary={"steps": [25, 100], "step_seconds": 86400,
                                               "max_seconds": 86400 * 2})
        _warm(client, exp)


class ChampionShadow10(Champion):
    name = "champion-shadow10"
    title = "champion, endpoint with a shadow variant of equal cost (10 % mirrored)"
    raw_latency = False

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.predict, self.deployment)
        client.deploy(m.predict, self.deployment)
        exp = client.create_experiment(self.deployment, "shadow", {"live": 1, "shadow": 2},
                                       shadow={"percent": 10})
        _warm(client, exp)


class ChampionBatched(Champion):
    name = "champion-batched"
    title = "champion with adaptive micro-batching (batch_max_size 64, vectorised function)"
    raw_latency = False

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.predict_many, self.deployment, batch_max_size=64)


class ChampionRanker(Champion):
    name = "champion-ranker"
    title = ("champion, endpoint /v1/bench with one ranker (20 items scored per request, "
             "answered best first), no experiment")
    raw_latency = True
    kinds = ("single",)

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.rank, self.deployment)

    def first_value(self, kind: str, reply: Any) -> float:
        return float(next(x["score"] for x in reply["data"] if x["id"] == "i0"))


class ChampionInterleave(ChampionRanker):
    name = "champion-interleave"
    title = ("champion, two such rankers interleaved per request (team draft, k 20), "
             "both called concurrently, request logging on")
    baseline = "champion-ranker"

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.rank, self.deployment)
        client.deploy(m.rank_reversed, self.deployment)
        exp = client.create_experiment(self.deployment, "interleave",
                                       {"control": 1, "candidate": 2}, interleave={"k": 20})
        _warm(client, exp)


class ChampionRankerIO(ChampionRanker):
    """The ranker waits 5 ms per request (an index, a feature store), so that the interleaved
    row shows whether the two calls overlap: with CPU-bound rankers on two saturated cores,
    two rankers' work takes twice the CPU whatever the overlap."""

    name = "champion-ranker-io"
    title = "champion, one ranker that waits 5 ms per request, no experiment"

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.rank_io, self.deployment)


class ChampionInterleaveIO(ChampionRanker):
    name = "champion-interleave-io"
    title = "champion, two rankers that wait 5 ms each, interleaved (team draft, k 20)"
    baseline = "champion-ranker-io"

    def setup_endpoint(self, client: Any) -> None:
        client.deploy(m.rank_io, self.deployment)
        client.deploy(m.rank_io_reversed, self.deployment)
        exp = client.create_experiment(self.deployment, "interleave",
                                       {"control": 1, "candidate": 2}, interleave={"k": 20})
        _warm(client, exp)


class ChampionReplicas(Champion):
    name = "champion-replicas"
    title = ("champion serve --replicas 2: two server processes on one port and one store "
             "(SQLite here; PostgreSQL in production, docs/scaling.md)")
    raw_latency = False

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        launch = super().launch(ctx, port, run_id)
        launch.argv += ["--replicas", "2"]
        return launch


def _ray_skip() -> None:
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as exc:
        raise Skip(f"Ray Serve is not installed ({exc}): pip install 'champion[ray]'") from None


class ChampionRay(Champion):
    """The server starts its own local Ray instance (no --ray-address) and runs the version
    as a Ray Serve deployment of one replica: champion's HTTP front, Ray's execution."""

    name = "champion-ray"
    title = ("champion serve --runtime ray: the version a Ray Serve deployment (1 replica) "
             "on a local Ray instance, called through a DeploymentHandle")
    raw_latency = True
    baseline = "rayserve"
    startup_timeout = 180.0

    def prepare(self, ctx: Context) -> None:
        _ray_skip()

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        launch = super().launch(ctx, port, run_id)
        launch.argv += ["--runtime", "ray"]
        return launch

    def versions(self) -> dict[str, str]:
        return {**super().versions(), **_dist_versions("ray")}


class RayServe(System):
    """Ray Serve alone: its HTTP proxy and one deployment calling the same function."""

    name = "rayserve"
    title = "Ray Serve's own HTTP proxy, one deployment (1 replica) with the model in-process"
    raw_latency = True
    vs_floor: ClassVar[bool] = True  # a peer printed as a ratio to the floor too
    startup_timeout = 180.0

    def prepare(self, ctx: Context) -> None:
        _ray_skip()

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        return Launch([sys.executable, "-m", "benchmarks.servers.rayserve_app", str(port)],
                      env={"BENCH_MODEL_PICKLE": str(ctx.model_pickle),
                           "RAY_USAGE_STATS_ENABLED": "0"})

    def versions(self) -> dict[str, str]:
        return _dist_versions("ray", "starlette", "uvicorn")


# ---------------------------------------------------------------------------- others

# The same scikit-learn and numpy as champion's environment, so the pickle loads unchanged.
_PINS = [f"scikit-learn=={md.version('scikit-learn')}", f"numpy=={md.version('numpy')}"]
_QUIET = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
          "BENTOML_DO_NOT_TRACK": "true", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


class External(System):
    """A system served from its own virtualenv under benchmarks/.venvs/."""

    venv_name: ClassVar[str] = ""
    requirements: ClassVar[list[str]] = []
    version_dists: ClassVar[tuple[str, ...]] = ()
    venv: venvs.Venv | None = None
    startup_timeout = 180.0

    def prepare(self, ctx: Context) -> None:
        try:
            self.venv = venvs.ensure(self.venv_name, [*self.requirements, *_PINS],
                                     ctx.install_timeout)
        except venvs.InstallFailed as exc:
            raise Skip(f"could not install {self.venv_name}: {exc}") from None
        self._versions = {d: self.venv.version_of(d) for d in self.version_dists}

    def env(self) -> dict[str, str]:
        assert self.venv is not None
        return {**_QUIET, "PATH": f"{self.venv.path / 'bin'}:{os.environ.get('PATH', '')}",
                "VIRTUAL_ENV": str(self.venv.path)}

    def versions(self) -> dict[str, str]:
        return getattr(self, "_versions", {})


class MLflow(External):
    name = "mlflow"
    title = "mlflow models serve --env-manager local (its default: 1 uvicorn worker)"
    path = "/invocations"
    venv_name = "mlflow"
    requirements = ["mlflow"]
    version_dists = ("mlflow", "uvicorn", "fastapi")

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        assert self.venv is not None
        self.model_dir = ctx.work / "mlflow-model"
        proc = subprocess.run(
            [str(self.venv.python), str(HERE / "servers" / "mlflow_save.py"),
             str(ctx.model_pickle), str(self.model_dir)],
            capture_output=True, text=True, env={**os.environ, **self.env()}, timeout=300,
        )
        if proc.returncode != 0:
            raise Skip(f"could not save the model in MLflow format: {proc.stderr[-500:]}")

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        assert self.venv is not None
        return Launch(
            [str(self.venv.bin("mlflow")), "models", "serve", "-m", str(self.model_dir),
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            # uvicorn reads UVICORN_* variables: no access log line per request.
            env={**self.env(), "UVICORN_ACCESS_LOG": "false"},
            cwd=ctx.work,
        )

    def body(self, ctx: Context, kind: str) -> bytes:
        data = ctx.bodies[kind]["data"]
        rows = [data] if kind == "single" else [x for _, x in data]
        return m.dumps({"inputs": rows})

    def first_value(self, kind: str, reply: Any) -> float:
        return float(reply["predictions"][0][1])


class BentoML(External):
    name = "bentoml"
    title = "bentoml serve, a @bentoml.service with 1 worker"
    path = "/predict"
    venv_name = "bentoml"
    requirements = ["bentoml"]
    version_dists = ("bentoml", "uvicorn", "starlette")

    def prepare(self, ctx: Context) -> None:
        super().prepare(ctx)
        self.service_dir = ctx.work / "bentoml-service"
        self.service_dir.mkdir(exist_ok=True)
        shutil.copy(HERE / "servers" / "bentoml_service.py", self.service_dir)

    def launch(self, ctx: Context, port: int, run_id: str) -> Launch:
        return Launch(
            [str(self.venv.bin("bentoml")) if self.venv else "bentoml", "serve",
             "bentoml_service:Model", "--host", "127.0.0.1", "--port", str(port)],
            env={**self.env(), "BENCH_MODEL_PICKLE": str(ctx.model_pickle),
                 "BENCH_WORKERS": "1", "BENTOML_HOME": str(ctx.work / "bentoml-home")},
            cwd=self.service_dir,
        )

    def first_value(self, kind: str, reply: Any) -> float:
        return float(reply[0][1] if kind == "batch" else reply)


SYSTEMS: dict[str, type[System]] = {
    cls.name: cls for cls in (Floor, Floor2, FloorVectorised, Champion, ChampionNoLog,
                              ChampionAB, ChampionCanary, ChampionBandit, ChampionShadow,
                              ChampionShadow10, ChampionBatched,
                              ChampionRanker, ChampionInterleave, ChampionRankerIO,
                              ChampionInterleaveIO, ChampionReplicas, ChampionRay, RayServe,
                              MLflow, BentoML)
}
REFERENCE = "floor"  # champion rows are also printed as a ratio to this system


def parse_reply(raw: bytes) -> Any:
    return json.loads(raw)
