"""Private virtualenvs for the other serving systems, made on first use.

Each system that is not champion (MLflow, BentoML) runs from its own virtualenv under
``benchmarks/.venvs/NAME`` so that its dependencies never touch champion's. The virtualenv is
made with ``python -m venv`` and filled with pip from the package index, time-boxed; a marker
file records the exact requirements so a changed pin reinstalls. A failure is reported as a
reason to skip the system, never as a crash of the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"
MARKER = ".champion-bench.json"


@dataclass
class Venv:
    name: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, tool: str) -> Path:
        return self.path / "bin" / tool

    def version_of(self, dist: str) -> str:
        out = subprocess.run(
            [str(self.python), "-c",
             f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True, text=True, timeout=60,
        )
        return out.stdout.strip() if out.returncode == 0 else "?"


class InstallFailed(Exception):
    pass


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ensure(name: str, requirements: list[str], timeout: float) -> Venv:
    """The virtualenv NAME with REQUIREMENTS installed; InstallFailed (with why) otherwise."""
    venv = Venv(name, VENVS / name)
    marker = venv.path / MARKER
    want = {"requirements": requirements, "python": sys.version.split()[0]}
    if marker.is_file() and venv.python.exists():
        try:
            if json.loads(marker.read_text()) == want:
                return venv
        except ValueError:
            pass
    if venv.path.exists():
        shutil.rmtree(venv.path)
    VENVS.mkdir(parents=True, exist_ok=True)
    log_path = VENVS / f"{name}-install.log"
    _log(f"installing {name} into {venv.path} (first use; up to {timeout:.0f} s; "
         f"log {log_path})")
    started = time.monotonic()
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    # The system interpreter behind champion's own venv: the same Python version everywhere.
    base_python = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base_python, "-m", "venv", str(venv.path)],
        [str(venv.python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(venv.python), "-m", "pip", "install", "--quiet", *requirements],
    ]
    with open(log_path, "w") as log:
        for step in steps:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise InstallFailed(f"install of {name} ran past {timeout:.0f} s")
            log.write("$ " + " ".join(step) + "\n")
            log.flush()
            try:
                proc = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      timeout=left, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                shutil.rmtree(venv.path, ignore_errors=True)
                raise InstallFailed(
                    f"install of {name} ran past {timeout:.0f} s (see {log_path})") from None
            if proc.returncode != 0:
                shutil.rmtree(venv.path, ignore_errors=True)
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise InstallFailed(
                    f"`{' '.join(step[2:5])} ...` failed (exit {proc.returncode}): "
                    + " | ".join(tail) + f" (full log {log_path})")
    marker.write_text(json.dumps(want))
    _log(f"installed {name} in {time.monotonic() - started:.0f} s")
    return venv
