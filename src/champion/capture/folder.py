"""A deployment kept as a folder in Modelbit's git layout, read and written.

::

    deployments/churn/
    ├── source.py          the main function (and what it uses)
    ├── metadata.yaml      runtimeInfo.mainFunction, pythonVersion, ... (schemaVersion 2)
    ├── requirements.txt   pinned packages (may be empty)
    ├── data/model.pkl     pickled values: model = modelbit.load_value("data/model.pkl")
    └── ...                any other file the code opens, by its relative path

``read_folder`` turns such a folder into a version manifest without running its code (the
main function's signature comes from parsing ``source.py``); the worker imports ``source``
from the version's files, with ``import modelbit`` answered by champion's stand-in.
``write_folder`` writes a deployed version back out in the same layout (``champion
export``), so that a notebook deploy can be committed to git and deployed from there.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from champion.capture.packages import SIMPLE_REQUIREMENT
from champion.errors import DeployError

SOURCE = "source.py"
METADATA = "metadata.yaml"
REQUIREMENTS = "requirements.txt"
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".venv"})
MAX_FILES = 1000
STUB = b"_: MBFileStub"
# metadata.yaml keys champion applies; the others are kept (and written back by export).
IGNORED_RUNTIME_KEYS = {
    "systemPackages": "system packages are not installed by champion",
    "baseImage": "versions run in a virtual environment, not an image",
    "capabilities": "no GPU is assigned",
    "snowflakeMaxRows": "there is no Snowflake integration",
    "snowflakeMockReturnValue": "there is no Snowflake integration",
}


@dataclass
class Folder:
    """A deployment folder, read: what a deploy uploads and records."""

    path: Path
    name: str
    manifest: dict[str, Any]
    blobs: dict[str, bytes]
    source: str
    origin: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_deployment_folder(path: Path) -> bool:
    return (path / SOURCE).is_file() and (path / METADATA).is_file()


def _signature(tree: ast.Module, main: str) -> list[dict[str, Any]] | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == main:
            if isinstance(node, ast.AsyncFunctionDef):
                raise DeployError(f"cannot deploy: {main}() in source.py is async; deploy a "
                                  "plain def function")
            a = node.args
            positional = [(p, "POSITIONAL_ONLY") for p in a.posonlyargs] + [
                (p, "POSITIONAL_OR_KEYWORD") for p in a.args]
            first_default = len(positional) - len(a.defaults)
            sig = [{"name": p.arg, "kind": kind, "default": i >= first_default}
                   for i, (p, kind) in enumerate(positional)]
            if a.vararg:
                sig.append({"name": a.vararg.arg, "kind": "VAR_POSITIONAL", "default": False})
            sig += [{"name": p.arg, "kind": "KEYWORD_ONLY", "default": d is not None}
                    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
            if a.kwarg:
                sig.append({"name": a.kwarg.arg, "kind": "VAR_KEYWORD", "default": False})
            return sig
    return None


def _args_signature(args: Any) -> list[dict[str, Any]] | None:
    """``mainFunctionArgs: [x:float, return:str]`` as a signature (when the main function is
    not a ``def`` in source.py, e.g. a pickled function assigned to its name)."""
    if not isinstance(args, list):
        return None
    names = [str(a).split(":", 1)[0] for a in args]
    return [{"name": n, "kind": "POSITIONAL_OR_KEYWORD", "default": False}
            for n in names if n and n != "return"]


def git_origin(path: Path) -> dict[str, Any]:
    """The git commit the folder is at, and whether it differs from it (dirty)."""
    origin: dict[str, Any] = {"kind": "folder", "commit": None, "dirty": None}

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(path), *args], capture_output=True,
                                 text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None:
        return origin
    origin["repository"] = top
    origin["path"] = path.resolve().relative_to(Path(top).resolve()).as_posix() or "."
    origin["commit"] = git("rev-parse", "HEAD")
    origin["branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=all", "--", ".")
    origin["dirty"] = bool(status) if status is not None else None
    return origin


def _files(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if not f.is_file() or f.suffix == ".pyc" or rel.as_posix() in (METADATA,
                                                                        REQUIREMENTS):
            continue
        files[rel.as_posix()] = f.read_bytes()
        if len(files) > MAX_FILES:
            raise DeployError(f"cannot deploy {path}: more than {MAX_FILES} files")
    return files


def read_folder(path: str | Path, name: str | None = None,
                extra_requirements: list[str] | None = None) -> Folder:
    """Read a deployment folder; DeployError naming what is missing or wrong."""
    path = Path(path)
    if not path.is_dir():
        raise DeployError(f"cannot deploy {path}: not a folder")
    for required in (SOURCE, METADATA):
        if not (path / required).is_file():
            raise DeployError(f"cannot deploy {path}: it has no {required} (a deployment "
                              "folder holds source.py, metadata.yaml and requirements.txt)")
    try:
        metadata = yaml.safe_load((path / METADATA).read_text()) or {}
    except yaml.YAMLError as exc:
        raise DeployError(f"cannot deploy {path}: {METADATA} is not valid YAML: {exc}"
                          ) from None
    runtime = metadata.get("runtimeInfo") if isinstance(metadata, dict) else None
    if not isinstance(runtime, dict) or not isinstance(runtime.get("mainFunction"), str):
        raise DeployError(f"cannot deploy {path}: {METADATA} needs runtimeInfo.mainFunction, "
                          "the name of the function in source.py that answers requests")
    main = runtime["mainFunction"]
    source = (path / SOURCE).read_text()
    try:
        tree = ast.parse(source, filename=str(path / SOURCE))
    except SyntaxError as exc:
        raise DeployError(f"cannot deploy {path}: source.py does not parse: {exc}") from None
    kept = (metadata.get("champion") or {}).get("signature")
    signature = _signature(tree, main) or (kept if isinstance(kept, list) else None) or (
        _args_signature(runtime.get("mainFunctionArgs")))
    if signature is None:
        raise DeployError(f"cannot deploy {path}: source.py defines no function {main!r} "
                          "(runtimeInfo.mainFunction)")
    requirements: list[str] = []
    if (path / REQUIREMENTS).is_file():
        for raw in (path / REQUIREMENTS).read_text().splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                requirements.append(line)
    requirements += list(extra_requirements or ())
    files = _files(path)
    for rel, data in files.items():
        if data.startswith(STUB):
            raise DeployError(
                f"cannot deploy {path}: {rel} is a Modelbit file stub, not the file: check "
                "the repository out with Modelbit's git filter (modelbit clone) so that the "
                "real content is there", file=rel)
    blobs = {sha256(data): data for data in files.values()}
    packages = {}
    for line in requirements:
        m = SIMPLE_REQUIREMENT.match(line)
        if m and m.group(2):
            packages[m.group(1)] = m.group(2)
    warnings = [f"{METADATA}: runtimeInfo.{key} is ignored: {why}"
                for key, why in IGNORED_RUNTIME_KEYS.items() if runtime.get(key)]
    python = runtime.get("pythonVersion")
    manifest: dict[str, Any] = {
        "function_name": main,
        "imports": [f"from source import {main}"],
        "helpers": [],
        "values": {},
        "value_types": {},
        "files": {rel: sha256(data) for rel, data in files.items()},
        "function_pickle": None,
        "packages": packages,
        "modules": [],
        "python_version": str(python) if python else platform.python_version(),
        "python_request": str(python) if python else None,
        "requirements": requirements,
        "signature": signature,
        "tags": sorted(str(t) for t in metadata.get("tags") or []),
        "folder": {"metadata": metadata},
    }
    columns = runtime.get("dataframeModeColumns")
    if columns:
        manifest["dataframe"] = [{"name": str(c["name"]), "dtype": c.get("dtype")}
                                 for c in columns if isinstance(c, dict) and "name" in c]
    origin = git_origin(path)
    origin["digest"] = content_digest(manifest)
    return Folder(path, name or path.resolve().name, manifest, blobs, source, origin,
                  warnings)


def content_digest(manifest: dict[str, Any]) -> str:
    """What decides whether a folder differs from a deployed version (for ``plan``)."""
    keys = ("function_name", "files", "requirements", "python_request", "signature",
            "dataframe")
    return sha256(json.dumps({k: manifest.get(k) for k in keys}, sort_keys=True).encode())


# ---------------------------------------------------------------------- writing


def _value_line(name: str, type_name: str) -> str:
    return f'{name} = modelbit.load_value("data/{name}.pkl")  # {type_name}'


def folder_files(info: dict[str, Any], read: Any) -> dict[str, bytes]:
    """A deployed version (``GET /api/deployments/NAME/versions/N`` with its manifest) as
    the files of a deployment folder; ``read(digest)`` gives an artifact's bytes."""
    manifest: dict[str, Any] = info["manifest"]
    main = manifest["function_name"]
    out: dict[str, bytes] = {}
    for rel, digest in manifest.get("files", {}).items():
        out[rel] = read(digest)
    stored = (manifest.get("folder") or {}).get("metadata")
    python = manifest.get("python_request") or ".".join(
        str(manifest.get("python_version") or platform.python_version()).split(".")[:2])
    if stored is None:  # a function captured from a notebook or script: write source.py
        if SOURCE in out or METADATA in out or REQUIREMENTS in out:
            raise DeployError(f"cannot export: the version ships a file named {SOURCE}, "
                              f"{METADATA} or {REQUIREMENTS}, which the layout needs")
        lines = ["import modelbit", *manifest.get("imports", [])]
        parts = ["\n".join(lines)]
        values = manifest.get("values", {})
        types = manifest.get("value_types", {})
        if values:
            parts.append("\n".join(_value_line(n, types.get(n, "")) for n in values))
            for value, digest in values.items():
                out[f"data/{value}.pkl"] = read(digest)
        if manifest.get("function_pickle"):
            out[f"data/{main}.pkl"] = read(manifest["function_pickle"])
            parts.append(f"# main function (pickled by value: a closure, lambda or decorated "
                         f"function)\n{_value_line(main, 'function')}")
        else:
            helpers = [h.rstrip() for h in manifest.get("helpers", [])]
            parts += helpers[:-1]
            parts.append("# main function\n" + (helpers[-1] if helpers else ""))
        out[SOURCE] = ("\n\n\n".join(p for p in parts if p.strip()) + "\n").encode()
        args = [f"{p['name']}:Any" for p in manifest.get("signature", [])
                if p["kind"] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
        runtime: dict[str, Any] = {"mainFunction": main, "mainFunctionArgs": args,
                                   "pythonVersion": python}
        if manifest.get("dataframe"):
            runtime["dataframeModeColumns"] = manifest["dataframe"]
        metadata: dict[str, Any] = {"owner": info.get("created_by", ""),
                                    "runtimeInfo": runtime, "schemaVersion": 2}
        if manifest.get("function_pickle"):
            # No def to read the signature from: keep it (with which parameters have
            # defaults), as mainFunctionArgs cannot say.
            metadata["champion"] = {"signature": manifest.get("signature", [])}
        if manifest.get("tags"):
            metadata["tags"] = manifest["tags"]
    else:
        metadata = stored
    out[METADATA] = yaml.safe_dump(metadata, sort_keys=False).encode()
    requirements = manifest.get("requirements")
    if requirements is None:
        requirements = [f"{n}=={v}" if v else n
                        for n, v in sorted((manifest.get("packages") or {}).items())]
    out[REQUIREMENTS] = ("\n".join(requirements) + "\n" if requirements else "").encode()
    return out


def write_folder(files: dict[str, bytes], dest: str | Path, *, force: bool = False) -> Path:
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()) and not force:
        raise DeployError(f"cannot export into {dest}: it is not empty (use --force to "
                          "overwrite)")
    for rel, data in files.items():
        target = dest / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise DeployError(f"cannot export: unsafe file path {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def scaffold(name: str, python: str | None = None, owner: str = "") -> dict[str, bytes]:
    """The files of a new deployment folder (``champion init NAME``)."""
    fn = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "predict"
    if fn[0].isdigit():
        fn = "predict_" + fn
    python = python or ".".join(platform.python_version().split(".")[:2])
    source = f'''import modelbit  # champion stands in for modelbit.load_value and friends

# Values shipped with the deployment, pickled under data/:
# model = modelbit.load_value("data/model.pkl")


# main function
def {fn}(name: str) -> str:
    """Answers POST /v1/{name}: {{"data": "world"}} -> {{"data": "Hello, world!"}}."""
    return f"Hello, {{name}}!"
'''
    metadata = {"owner": owner, "runtimeInfo": {"mainFunction": fn,
                                                "mainFunctionArgs": ["name:str", "return:str"],
                                                "pythonVersion": python},
                "schemaVersion": 2}
    return {SOURCE: source.encode(),
            METADATA: yaml.safe_dump(metadata, sort_keys=False).encode(),
            REQUIREMENTS: b"",
            "data/.gitkeep": b""}
