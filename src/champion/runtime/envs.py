"""Per-version Python environments, built with uv.

A version whose packages (or Python) differ from the server's runs its workers in a virtual
environment of its own, built from its pinned list:

* **keyed by content**: ``env_id = sha256(Python, platform, sorted pins)``, so versions with
  the same packages share one environment, and a server restarted on the same data
  directory finds it again;
* **kept under the data directory**: ``DATA_DIR/envs/<env_id>/``, with uv's cache in
  ``DATA_DIR/uv-cache`` on the same filesystem, so that installs are hard links (or
  reflinks) into the cache rather than copies;
* **built atomically**: into ``envs/.tmp-*`` (a relocatable venv), then renamed into place;
  a file lock keeps two processes sharing the data directory from building the same one;
  offline from the cache first, from the index when that fails; within a time limit;
* **collected**: least recently used first once all of them pass a size budget, never one
  whose workers run or that is being built.

Workers in such an environment run its interpreter with ``PYTHONPATH`` set to a small
directory holding only champion's worker modules (``runtime-lib/``: standard library plus
``orjson`` and ``cloudpickle``, which every environment gets), so nothing of the server's
own dependencies leaks in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import signal
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from champion.capture.packages import normalize, requirement_name
from champion.errors import DeployError
from champion.runtime.pythons import Interpreter, find_interpreter, minor_of, server_interpreter

log = logging.getLogger("champion.envs")

MARKER = "champion-env.json"
# Distributions never installed into a version's environment: the worker side of champion
# comes from runtime-lib/, and Modelbit's client is stood in for by champion's shim.
NEVER_INSTALLED = frozenset({"champion", "modelbit"})
# What the worker itself imports, pinned to the server's versions unless the version pins
# them itself.
WORKER_DEPENDENCIES = ("cloudpickle", "orjson")
# The worker's modules copied into runtime-lib/ (all import only the standard library,
# orjson and cloudpickle; pandas only in DataFrame mode).
WORKER_MODULES = ("__init__.py", "worker.py", "loader.py", "protocol.py", "frames.py",
                  "modelbit_shim.py", "zygote.py", "pickles.py", "gcsettle.py")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;,#]+)\s*$")
__all__ = ["EnvManager", "EnvPlan", "normalize", "plan_for", "requirement_name"]


def clean_requirements(lines: Iterable[str]) -> list[str]:
    """Requirement lines without comments, blanks, champion or modelbit; sorted, unique."""
    out: dict[str, None] = {}
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if requirement_name(line) in NEVER_INSTALLED:
            continue
        out[line] = None
    return sorted(out, key=str.lower)


def requirements_of(manifest: dict[str, Any]) -> list[str]:
    """The version's requirement lines: what it was deployed with, else its pinned
    packages."""
    given = manifest.get("requirements")
    if given is None:
        given = [f"{n}=={v}" if v else n for n, v in (manifest.get("packages") or {}).items()]
    return clean_requirements(given)


@dataclass(frozen=True)
class EnvPlan:
    """What a version's own environment holds: the Python asked for and the requirements."""

    python: str  # "" for the server's
    requirements: tuple[str, ...]
    reasons: tuple[str, ...] = ()
    strict_python: bool = True  # False: a captured (not asked-for) Python, may fall back

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "requirements": list(self.requirements)}


def plan_for(manifest: dict[str, Any]) -> EnvPlan | None:
    """The environment a version needs, or ``None`` when the server's can run it.

    The server's environment runs it when every requirement is an exact pin of a
    distribution the server has at that version, and its Python is the server's minor
    version (a version deployed with ``environment="server"`` always runs there).
    """
    if manifest.get("environment_mode") == "server":
        return None
    requirements = requirements_of(manifest)
    reasons: list[str] = []
    for line in requirements:
        m = _PIN.match(line)
        if not m:
            reasons.append(f"{line} is not an exact pin")
            continue
        name, version = m.group(1), m.group(3)
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            reasons.append(f"{name}=={version}: the server has none")
            continue
        if have != version:
            reasons.append(f"{name}=={version}: the server has {have}")
    server = server_interpreter()
    asked = str(manifest.get("python_request") or "")
    captured = str(manifest.get("python_version") or "")
    python = ""
    strict = True
    if asked and minor_of(asked) != server.minor and asked != server.version:
        python = asked
        reasons.append(f"Python {asked}: the server runs {server.version}")
    elif not asked and captured and minor_of(captured) != server.minor:
        python, strict = minor_of(captured), False
        reasons.append(f"Python {minor_of(captured)}: the server runs {server.version}")
    if not reasons:
        return None
    return EnvPlan(python, tuple(requirements), tuple(reasons), strict)


@dataclass(frozen=True)
class Resolved:
    """A plan made concrete on this machine: its interpreter and environment id."""

    plan: EnvPlan
    interpreter: Interpreter
    env_id: str
    install: tuple[str, ...]  # the requirement lines installed (with the worker's own)


@dataclass
class Env:
    env_id: str
    path: Path
    info: dict[str, Any]

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")


class BuildFailed(DeployError):
    """An environment could not be built; the message carries uv's reason."""


@dataclass
class BuildLog:
    """The lines a build printed, kept for the deploy's progress."""

    lines: list[str] = field(default_factory=list)
    keep: int = 200
    listeners: list[Callable[[str], None]] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        del self.lines[:-self.keep]
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                listener(line)


def _find_uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise DeployError("cannot build an environment: the 'uv' package is not "
                              "installed where champion serve runs (pip install uv)") from None
        return found


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes of all files, bytes of files not hard-linked elsewhere, e.g. into uv's cache)."""
    total = own = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            total += st.st_size
            if st.st_nlink <= 1:
                own += st.st_size
    return total, own


class EnvManager:
    """Builds, finds and collects the environments under ``DATA_DIR/envs``."""

    def __init__(self, data_dir: Path, *, budget_bytes: int = 10 * 1024**3,
                 timeout: float = 600.0) -> None:
        self.root = data_dir / "envs"
        self.cache = data_dir / "uv-cache"
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.budget = budget_bytes
        self.timeout = timeout
        self.lib = self._write_worker_lib(data_dir / "runtime-lib")
        self._uv: str | None = None
        self._tasks: dict[str, asyncio.Task[Env]] = {}
        self._logs: dict[str, BuildLog] = {}
        self._resolved: dict[EnvPlan, Resolved] = {}
        self._ready: dict[str, Env] = {}
        self._environ: dict[str, str] | None = None
        # Set by the server: the env ids whose workers are running (never collected).
        self.in_use: Callable[[], set[str]] = set
        if os.stat(self.root).st_dev != os.stat(self.cache).st_dev:
            log.warning("%s and %s are on different filesystems: uv copies every package "
                        "into each environment instead of linking it", self.cache, self.root)

    @property
    def uv(self) -> str:
        if self._uv is None:
            self._uv = _find_uv()
        return self._uv

    # ---------------------------------------------------------------- the worker's side

    @staticmethod
    def _write_worker_lib(base: Path) -> Path:
        """``runtime-lib/<hash>/champion/...``: the worker's modules and nothing else."""
        from champion import __version__
        from champion import runtime as runtime_pkg

        src = Path(runtime_pkg.__file__).parent
        files = {name: (src / name).read_bytes() for name in WORKER_MODULES}
        init = (f'"""champion\'s worker side, for a version\'s own environment."""\n\n'
                f'__version__ = "{__version__}"\n').encode()
        digest = hashlib.sha256(init + b"".join(files[n] for n in sorted(files))).hexdigest()
        lib = base / digest[:16]
        if (lib / "champion" / "runtime" / "worker.py").is_file():
            return lib
        tmp = base / f".tmp-{uuid.uuid4().hex[:8]}"
        (tmp / "champion" / "runtime").mkdir(parents=True)
        (tmp / "champion" / "__init__.py").write_bytes(init)
        for name, data in files.items():
            (tmp / "champion" / "runtime" / name).write_bytes(data)
        try:
            os.rename(tmp, lib)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
        return lib

    def worker_environ(self) -> dict[str, str]:
        """Environment variables of a worker process in a version's environment."""
        if self._environ is None:
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
            env["PYTHONPATH"] = str(self.lib)
            env["PYTHONNOUSERSITE"] = "1"
            self._environ = env
        return self._environ

    # ---------------------------------------------------------------- planning

    def resolve(self, plan: EnvPlan) -> Resolved:
        """The interpreter and env id for ``plan`` on this machine (DeployError if this
        machine has no such Python). Runs interpreters: call it from a thread."""
        cached = self._resolved.get(plan)
        if cached is not None:
            return cached
        try:
            interpreter = find_interpreter(plan.python, self._uv_or_none())
        except DeployError:
            if plan.strict_python:
                raise
            interpreter = server_interpreter()  # a captured Python: run on the server's
        names = {requirement_name(r) for r in plan.requirements}
        install = list(plan.requirements)
        for dep in WORKER_DEPENDENCIES:
            if dep not in names:
                install.append(f"{dep}=={importlib.metadata.version(dep)}")
        install = sorted(install, key=str.lower)
        key = json.dumps({"python": interpreter.version, "implementation":
                          interpreter.implementation, "platform": sysconfig.get_platform(),
                          "requirements": install}, sort_keys=True)
        env_id = hashlib.sha256(key.encode()).hexdigest()[:24]
        resolved = Resolved(plan, interpreter, env_id, tuple(install))
        self._resolved[plan] = resolved
        return resolved

    def cached(self, plan: EnvPlan) -> Resolved | None:
        """``resolve``'s answer if it was computed before (never runs anything)."""
        return self._resolved.get(plan)

    def _uv_or_none(self) -> str | None:
        try:
            return self.uv
        except DeployError:
            return None

    # ---------------------------------------------------------------- finding

    def path(self, env_id: str) -> Path:
        return self.root / env_id

    def ready(self, env_id: str) -> Env | None:
        """The built environment, if this machine has it."""
        env = self._ready.get(env_id)
        if env is not None and (env.path / MARKER).is_file():
            return env
        marker = self.path(env_id) / MARKER
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            self._ready.pop(env_id, None)
            return None
        env = self._ready[env_id] = Env(env_id, self.path(env_id), info)
        return env

    def building(self, env_id: str) -> bool:
        task = self._tasks.get(env_id)
        return task is not None and not task.done()

    def build_log(self, env_id: str) -> BuildLog:
        return self._logs.setdefault(env_id, BuildLog())

    def touch(self, env_id: str) -> None:
        """Mark an environment used now (it is collected least recently used first)."""
        with contextlib.suppress(OSError):
            os.utime(self.path(env_id) / MARKER)

    def start(self, resolved: Resolved) -> asyncio.Task[Env]:
        """Build ``resolved`` in the background (once, however often asked)."""
        task = self._tasks.get(resolved.env_id)
        if task is None or task.done():
            self._logs[resolved.env_id] = BuildLog()
            task = asyncio.create_task(self.ensure(resolved))
            self._tasks[resolved.env_id] = task
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    # ---------------------------------------------------------------- building

    async def ensure(self, resolved: Resolved) -> Env:
        """The environment of ``resolved``, built first if this machine lacks it."""
        env = self.ready(resolved.env_id)
        if env is not None:
            self.touch(resolved.env_id)
            return env
        out = self.build_log(resolved.env_id)
        lock_path = self.root / f"{resolved.env_id}.lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            out("waiting for another build of the same environment")
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            env = self.ready(resolved.env_id)
            if env is not None:
                out("built meanwhile by another process: reused")
                return env
            env = await self._build(resolved, out)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        try:
            await self.collect()
        except Exception:
            log.exception("collecting unused environments failed")
        return env

    async def _run(self, args: list[str], out: BuildLog, deadline: float) -> tuple[int, str]:
        env = {**os.environ, "UV_CACHE_DIR": str(self.cache), "UV_PYTHON_DOWNLOADS": "never",
               "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}
        env.pop("VIRTUAL_ENV", None)
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, env=env, start_new_session=True)
        text: list[str] = []

        async def read() -> None:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    text.append(line)
                    out(line)

        try:
            await asyncio.wait_for(asyncio.gather(read(), proc.wait()),
                                   max(0.1, deadline - time.monotonic()))
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        return proc.returncode or 0, "\n".join(text)

    async def _build(self, resolved: Resolved, out: BuildLog) -> Env:
        started = time.monotonic()
        deadline = started + self.timeout
        tmp = self.root / f".tmp-{resolved.env_id}-{uuid.uuid4().hex[:6]}"
        interp = resolved.interpreter
        out(f"building environment {resolved.env_id} (Python {interp.version}, "
            f"{len(resolved.install)} requirements) with uv")
        try:
            code, text = await self._run(
                [self.uv, "venv", "--quiet", "--relocatable", "--python", interp.path,
                 str(tmp)], out, deadline)
            if code != 0:
                raise BuildFailed(f"cannot build the environment: uv venv failed: "
                                  f"{_uv_error(text)}")
            requirements = tmp / "champion-requirements.txt"
            requirements.write_text("\n".join(resolved.install) + "\n")
            python = str(tmp / "bin" / "python")
            install = [self.uv, "pip", "install", "--python", python, "-r", str(requirements)]
            code, text = await self._run([*install, "--offline"], out, deadline)
            source = "cache"
            if code != 0:
                out("not all in uv's cache: resolving from the package index")
                code, text = await self._run(install, out, deadline)
                source = "index"
            if code != 0:
                raise BuildFailed(f"cannot build the environment: {_uv_error(text)}",
                                  requirements=list(resolved.install))
            _code, freeze = await self._run([self.uv, "pip", "freeze", "--python", python],
                                            BuildLog(), deadline)
            total, own = await asyncio.to_thread(tree_size, tmp)
            info = {
                "env_id": resolved.env_id,
                "python": interp.version,
                "interpreter": interp.path,
                "platform": sysconfig.get_platform(),
                "requirements": list(resolved.install),
                "resolved": [line for line in freeze.splitlines() if "==" in line],
                "built_at": time.time(),
                "build_seconds": round(time.monotonic() - started, 3),
                "installed_from": source,
                "bytes": total,
                "own_bytes": own,
            }
            (tmp / MARKER).write_text(json.dumps(info, indent=2))
            os.rename(tmp, self.path(resolved.env_id))
        except TimeoutError:
            raise BuildFailed(
                f"cannot build the environment: it took longer than {self.timeout:g} s "
                "(the build_timeout setting)") from None
        finally:
            if tmp.exists():
                await asyncio.to_thread(shutil.rmtree, tmp, True)
        out(f"environment ready in {info['build_seconds']:.1f} s "
            f"({total / 1e6:.1f} MB, {own / 1e6:.1f} MB of it its own)")
        env = Env(resolved.env_id, self.path(resolved.env_id), info)
        self._ready[resolved.env_id] = env
        return env

    # ---------------------------------------------------------------- collecting

    def listing(self) -> list[dict[str, Any]]:
        out = []
        for marker in sorted(self.root.glob(f"*/{MARKER}")):
            try:
                info = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue
            info["last_used"] = marker.stat().st_mtime
            info["in_use"] = info.get("env_id") in self.in_use()
            out.append(info)
        return out

    async def collect(self) -> list[str]:
        """Remove least recently used environments until the rest fit the budget; never
        one in use or being built. Returns the removed env ids."""
        envs = sorted(self.listing(), key=lambda e: e["last_used"])
        total = sum(int(e.get("bytes", 0)) for e in envs)
        removed: list[str] = []
        busy = self.in_use() | {k for k, t in self._tasks.items() if not t.done()}
        for e in envs:
            if total <= self.budget:
                break
            env_id = str(e.get("env_id"))
            if env_id in busy:
                continue
            log.info("removing unused environment %s (%d bytes)", env_id, e.get("bytes", 0))
            self._ready.pop(env_id, None)
            await asyncio.to_thread(shutil.rmtree, self.path(env_id), True)
            with contextlib.suppress(OSError):
                (self.root / f"{env_id}.lock").unlink()
            total -= int(e.get("bytes", 0))
            removed.append(env_id)
        if removed:
            with contextlib.suppress(Exception):
                await self._run([self.uv, "cache", "prune"], BuildLog(),
                                time.monotonic() + 120)
        return removed


def _uv_error(text: str) -> str:
    """uv's own explanation: from its first ``error:`` line on, trimmed."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().lower().startswith("error"):
            lines = lines[i:]
            break
    message = " ".join(line.strip() for line in lines if line.strip())
    return message[:2000] or "uv failed without saying why"


def python_of(env: Env | None) -> str:
    return env.python if env is not None else sys.executable
