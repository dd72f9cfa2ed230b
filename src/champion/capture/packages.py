"""Which installed packages and local files a function needs."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

_STDLIB = frozenset(sys.stdlib_module_names) | {"__main__", "builtins", "__builtin__"}
# Modules that pickles refer to but that are part of every champion install.
_ALWAYS = frozenset({"cloudpickle", "copyreg", "_codecs"})


@functools.cache
def _site_dirs() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    paths.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(os.path.realpath(p) for p in paths if p)


@functools.cache
def _module_to_dists() -> dict[str, list[importlib.metadata.Distribution]]:
    """Top-level module -> the distributions that install it.

    What ``importlib.metadata.packages_distributions()`` answers, read from the metadata text
    directly: the standard function builds a ``PackagePath`` for every file of every installed
    distribution (13,000 in a data-science venv, 0.36 s, most of a first deploy's time)."""
    out: dict[str, list[importlib.metadata.Distribution]] = {}
    for dist in importlib.metadata.distributions():
        # (dist.metadata parses an email message per distribution: read only for the few a
        # function needs, in distributions_for)
        declared = dist.read_text("top_level.txt")
        if declared:
            tops = {line.strip() for line in declared.splitlines() if line.strip()}
        else:
            tops = _record_tops(dist.read_text("RECORD") or dist.read_text("SOURCES.txt") or "")
        for top in tops:
            out.setdefault(top, []).append(dist)
    return out


def _record_tops(record: str) -> set[str]:
    """The top-level modules a RECORD (or SOURCES.txt) lists: a package's first directory,
    or a single-file module's name, from its ``.py`` files."""
    tops = set()
    for line in record.splitlines():
        path = line.split(",", 1)[0].strip('"')
        if not path.endswith(".py"):
            continue
        first, sep, _ = path.partition("/")
        tops.add(first if sep else first[:-3])
    return tops


def top_level(module_name: str) -> str:
    return module_name.split(".", 1)[0]


def is_stdlib(module_name: str) -> bool:
    return top_level(module_name) in _STDLIB


def local_module_file(module: ModuleType | str, root: Path) -> Path | None:
    """The file of a module that lives under ``root`` rather than in an environment."""
    mod = sys.modules.get(module) if isinstance(module, str) else module
    file = getattr(mod, "__file__", None) if mod is not None else None
    if not file:
        return None
    real = os.path.realpath(file)
    if any(real.startswith(d + os.sep) for d in _site_dirs()):
        return None
    try:
        Path(real).relative_to(root)
    except ValueError:
        return None
    return Path(real)


def distributions_for(module_names: set[str]) -> dict[str, str]:
    """Installed distributions (name -> version) that provide these top-level modules."""
    mapping = _module_to_dists()
    out: dict[str, str] = {}
    for name in sorted({top_level(m) for m in module_names}):
        if is_stdlib(name) or name in _ALWAYS:
            continue
        for dist in mapping.get(name, []):
            dist_name, version = dist.metadata["Name"], dist.version
            if dist_name and version:
                out[dist_name] = version
    return out


_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
SIMPLE_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^\s;,#]+))?\s*$")


def normalize(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution a requirement line names (``None`` for a URL or an option)."""
    line = line.strip()
    if not line or line.startswith(("-", "#")) or "://" in line.split(";")[0].split("@")[0]:
        return None
    m = _NAME.match(line)
    return normalize(m.group(1)) if m else None


def requirement_lines(packages: dict[str, str], given: list[str] | None) -> list[str]:
    """A version's requirement lines: the pinned packages (captured, and given as ``name``
    or ``name==version``), then any other given line (a range, a URL) verbatim, which
    replaces the captured pin of the same distribution."""
    special = [g.strip() for g in given or () if g.strip() and not SIMPLE_REQUIREMENT.match(g)]
    named = {requirement_name(g) for g in special}
    lines = [f"{dist}=={version}" if version else dist
             for dist, version in sorted(packages.items()) if normalize(dist) not in named]
    return lines + special
