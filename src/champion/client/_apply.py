"""``champion plan -f DIR`` and ``champion apply -f DIR``: a folder of deployments (Modelbit's
git layout) and experiment specs, compared with a server, then applied.

A folder holds deployment folders (any directory with ``source.py`` and ``metadata.yaml``,
usually under ``deployments/``) and experiment specs (``*.yaml``/``*.yml``/``*.json`` files
outside them with the fields of ``POST /api/experiments``, usually under ``experiments/``).
``plan`` reads the server and changes nothing; ``apply`` deploys each deployment folder that
is new or differs from its latest version, then applies each experiment spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from champion.capture.folder import Folder, is_deployment_folder, read_folder
from champion.errors import ChampionError, NotFound

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Change:
    """One line of a plan."""

    path: str  # as shown, relative to the folder planned
    kind: str  # deployment | experiment | skipped
    target: str  # the deployment, or the experiment's endpoint
    action: str  # create | new version | unchanged | create experiment | reweight | skip
    detail: str = ""
    folder: Folder | None = field(default=None, repr=False)
    spec: Path | None = None

    @property
    def changes(self) -> bool:
        return self.action not in ("unchanged", "skip")

    def line(self) -> str:
        if self.kind == "skipped":
            return f"! {self.path}: skipped ({self.detail})"
        mark = {"create": "+", "create experiment": "+", "new version": "~",
                "reweight": "~", "unchanged": "=", "skip": "!"}.get(self.action, "?")
        detail = f" ({self.detail})" if self.detail else ""
        return f"{mark} {self.path}: {self.kind} {self.target}: {self.action}{detail}"


def scan(root: Path) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """Deployment folders, experiment specs, and files that are neither (with why)."""
    if is_deployment_folder(root):
        return [root], [], []
    if root.is_file():
        return [], [root], []
    folders = sorted(p.parent for p in root.rglob("metadata.yaml")
                     if is_deployment_folder(p.parent) and ".git" not in p.parts)
    specs: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.suffix not in SPEC_SUFFIXES or ".git" in f.parts:
            continue
        if any(f.is_relative_to(d) for d in folders):
            continue
        try:
            data = yaml.safe_load(f.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            skipped.append((f, f"not YAML: {exc}"))
            continue
        if isinstance(data, dict) and "endpoint" in data and "variants" in data:
            specs.append(f)
        elif isinstance(data, dict) and "backends" in data:
            skipped.append((f, "a Modelbit endpoint file (backends/mirrors) is not "
                               "translated; write it as a champion experiment spec"))
        else:
            skipped.append((f, "neither a deployment folder nor an experiment spec"))
    return folders, specs, skipped


def _commit(origin: dict[str, Any]) -> str:
    commit = origin.get("commit")
    if not commit:
        return "not in git"
    return f"commit {commit[:10]}" + (", dirty" if origin.get("dirty") else "")


def plan_deployment(client: Any, folder: Folder, shown: str) -> Change:
    try:
        latest = client.version(folder.name, "latest")
    except NotFound:
        return Change(shown, "deployment", folder.name, "create",
                      f"version 1, {_commit(folder.origin)}", folder)
    digest = (latest.get("origin") or {}).get("digest")
    if digest == folder.origin["digest"] and latest.get("status") != "failed":
        return Change(shown, "deployment", folder.name, "unchanged",
                      f"version {latest['version']}", folder)
    theirs: dict[str, str] = latest.get("files") or {}
    ours: dict[str, str] = folder.manifest["files"]
    what = sorted(p for p in set(theirs) | set(ours) if theirs.get(p) != ours.get(p))
    if (latest.get("requirements") or []) != folder.manifest["requirements"]:
        what.append("requirements.txt")
    if latest.get("python_request") != folder.manifest["python_request"]:
        what.append("pythonVersion")
    if latest.get("function_name") != folder.manifest["function_name"]:
        what.append("mainFunction")
    listed = ", ".join(what[:8]) + (f" and {len(what) - 8} more" if len(what) > 8 else "")
    return Change(shown, "deployment", folder.name, "new version",
                  f"after version {latest['version']}; changed: {listed or 'metadata'}; "
                  f"{_commit(folder.origin)}", folder)


def read_spec(path: Path) -> dict[str, Any]:
    """An experiment spec file (YAML or JSON), ``kind: experiment`` dropped."""
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        spec = None
        problem = f"{path} is not valid YAML: {exc}"
    else:
        problem = f"{path} must hold a mapping of experiment fields"
    if not isinstance(spec, dict):
        error = ChampionError(problem)
        error.local = True
        raise error
    spec.pop("kind", None)
    return spec


def experiment_change(client: Any, spec: dict[str, Any]
                      ) -> tuple[str, dict[str, Any] | None, dict[str, float]]:
    """What applying an experiment spec does: ``("create", None, {})``, or, for a
    not-stopped experiment of the same name on the endpoint, ``("reweight", it, weights)``
    when its weights differ from the spec's, else ``("unchanged", it, {})``."""
    existing = [e for e in client.experiments(spec.get("endpoint"))
                if spec.get("name") and e["name"] == spec["name"] and e["status"] != "stopped"]
    if not existing:
        return "create", None, {}
    e = existing[0]
    own = spec.get(e["strategy"])
    wanted = spec.get("weights") or (own.get("weights") if isinstance(own, dict) else None) or {}
    total = sum(float(v) for v in wanted.values()) or 1.0
    changed = any(abs(float(v) / total - e.get("weights", {}).get(k, -1)) > 1e-9
                  for k, v in wanted.items())
    if wanted and "weights" in e and changed:
        return "reweight", e, {k: float(v) for k, v in wanted.items()}
    return "unchanged", e, {}


def plan_experiment(client: Any, path: Path, shown: str) -> Change:
    """What ``champion apply -f SPEC`` would do with this spec (read only)."""
    spec = read_spec(path)
    endpoint = str(spec.get("endpoint"))
    action, e, _ = experiment_change(client, spec)
    if e is None:
        return Change(shown, "experiment", endpoint, "create experiment",
                      f"{spec.get('strategy', 'ab')} {spec.get('name') or ''}".strip(),
                      spec=path)
    if action == "reweight":
        return Change(shown, "experiment", endpoint, "reweight", e["id"], spec=path)
    return Change(shown, "experiment", endpoint, "unchanged", f"{e['id']} {e['status']}",
                  spec=path)


def plan(client: Any, root: str | Path) -> list[Change]:
    """The changes applying ``root`` would make; the server is only read."""
    root = Path(root)
    base = root if root.is_dir() else root.parent
    folders, specs, skipped = scan(root)
    changes: list[Change] = []
    for path in folders:
        shown = path.relative_to(base).as_posix() if path != base else path.name
        changes.append(plan_deployment(client, read_folder(path), shown))
    for path in specs:
        changes.append(plan_experiment(client, path, path.relative_to(base).as_posix()))
    for path, why in skipped:
        changes.append(Change(path.relative_to(base).as_posix(), "skipped", "", "skip", why))
    return changes


def apply_deployments(client: Any, changes: list[Change],
                      say: Callable[[str], None]) -> list[Any]:
    """Deploy each deployment folder that is new or changed; returns the new versions."""
    done = []
    for change in changes:
        if change.kind != "deployment" or not change.changes or change.folder is None:
            continue
        folder = change.folder
        version = client.deploy_manifest(folder.name, folder.manifest, folder.blobs,
                                         source=folder.source, origin=folder.origin,
                                         progress=say)
        say(f"deployed {version} ({_commit(folder.origin)})")
        done.append(version)
    return done
