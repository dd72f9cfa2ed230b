"""Find Python interpreters installed on this machine (never download one).

A version asks for a Python by ``major.minor`` (``"3.12"``) or a full version
(``"3.12.1"``). The server's own interpreter answers for its version; otherwise the
candidates are, in order: ``python3.X`` on ``PATH``, pyenv's versions (``$PYENV_ROOT`` or
``~/.pyenv``), uv-managed installs (``uv python find`` with downloads off), and the usual
system places. Each candidate is run once to learn its real version (a pyenv shim for a
version that is not active fails here and is skipped).
"""

from __future__ import annotations

import functools
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from champion.errors import DeployError

_VERSION_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # full, e.g. "3.12.1"
    implementation: str = "cpython"

    @property
    def minor(self) -> str:
        return minor_of(self.version)


def minor_of(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def server_interpreter() -> Interpreter:
    return Interpreter(sys.executable, platform.python_version(),
                       platform.python_implementation().lower())


def check_version(wanted: str) -> str:
    wanted = str(wanted).strip()
    if not _VERSION_RE.match(wanted):
        raise DeployError(f"python_version {wanted!r} is not a Python version like '3.12'",
                          python_version=wanted)
    return wanted


def _matches(found: str, wanted: str) -> bool:
    return found == wanted if wanted.count(".") == 2 else minor_of(found) == wanted


@functools.lru_cache(maxsize=256)
def _probe(path: str) -> Interpreter | None:
    try:
        out = subprocess.run(
            [path, "-c", "import platform; print(platform.python_version(), "
             "platform.python_implementation().lower())"],
            capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        return None
    return Interpreter(os.path.realpath(path) if "/shims/" not in path else path,
                       parts[0], parts[1])


def _candidates(minor: str, uv_bin: str | None) -> list[str]:
    names = [f"python{minor}"]
    found: list[str] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        for name in names:
            path = os.path.join(directory, name)
            if os.access(path, os.X_OK) and "/shims/" not in path:
                found.append(path)
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found += sorted(glob.glob(os.path.join(root, "versions", f"{minor}*", "bin",
                                           f"python{minor}")), reverse=True)
    if uv_bin:
        try:
            out = subprocess.run([uv_bin, "python", "find", "--no-project", minor],
                                 capture_output=True, text=True, timeout=30, check=False,
                                 env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
            if out.returncode == 0 and out.stdout.strip():
                found.append(out.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError):
            pass
    for prefix in ("/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"):
        found.append(f"{prefix}/python{minor}")
    which = shutil.which(f"python{minor}")
    if which:
        found.append(which)  # last: possibly a shim
    return list(dict.fromkeys(p for p in found if os.path.exists(p)))


def installed_versions(uv_bin: str | None = None) -> list[str]:
    """The Python versions this machine has (for messages)."""
    versions = {platform.python_version()}
    for minor in (f"3.{m}" for m in range(8, 16)):
        for path in _candidates(minor, None):
            found = _probe(path)
            if found is not None:
                versions.add(found.version)
    return sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def find_interpreter(wanted: str | None, uv_bin: str | None = None) -> Interpreter:
    """The interpreter for ``wanted`` (``None`` or ``""``: the server's), or a DeployError
    naming what the machine has."""
    server = server_interpreter()
    if not wanted:
        return server
    wanted = check_version(wanted)
    if _matches(server.version, wanted):
        return server
    for path in _candidates(minor_of(wanted), uv_bin):
        found = _probe(path)
        if found is not None and _matches(found.version, wanted):
            return found
    have = ", ".join(installed_versions(uv_bin))
    raise DeployError(
        f"cannot deploy: the version asks for Python {wanted}, and no such interpreter is "
        f"installed where the server runs (it has Python {have}); install Python {wanted} "
        f"there (on PATH, or with pyenv or 'uv python install'), or deploy with "
        f"python_version='{server.minor}'. champion never downloads interpreters.",
        python_version=wanted,
    )
