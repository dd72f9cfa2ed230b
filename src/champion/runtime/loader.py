"""Rebuild a deployed function from its manifest. Runs only inside worker processes."""

from __future__ import annotations

import linecache
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle


def load_function(manifest: dict[str, Any], read_blob: Callable[[str], bytes],
                  workdir: Path | None = None) -> Any:
    """Return the callable described by ``manifest``; blobs are read by content hash.

    The version's files are written under ``workdir`` (the server makes it, and removes it
    when the worker exits), and nowhere else: a destination that would land outside it
    (``../x``, an absolute path, a symlinked directory) fails the load.
    """
    files: dict[str, str] = manifest.get("files", {})
    if files:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="champion-files-"))
        root = workdir.resolve()
        for rel, digest in files.items():
            dest = (root / rel).resolve()
            if not dest.is_relative_to(root) or dest == root:
                raise ValueError(f"file {rel!r} would be written outside the version's "
                                 "directory")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(read_blob(digest))
        sys.path.insert(0, str(workdir))
        os.chdir(workdir)  # files shipped with the version open by their relative paths

    namespace: dict[str, Any] = {"__name__": "__champion__", "__builtins__": __builtins__}
    for stmt in manifest.get("imports", []):
        exec(stmt, namespace)
    for name, digest in manifest.get("values", {}).items():
        namespace[name] = cloudpickle.loads(read_blob(digest))
    if manifest.get("function_pickle"):
        # A function pickled by value carries the globals it uses.
        return cloudpickle.loads(read_blob(manifest["function_pickle"]))
    filename = f"<{manifest['function_name']}>"
    lines: list[str] = []
    for helper in manifest.get("helpers", []):
        # Compiled as if one file, so a traceback in the server log shows the source lines.
        source = "\n" * len(lines) + helper
        lines += [line + "\n" for line in helper.split("\n")]
        exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len("".join(lines)), None, lines, filename)
    return namespace[manifest["function_name"]]
