"""The shape of a deploy's manifest, checked at the edge before anything reads it.

A manifest comes from the client (champion's capture) but reaches the server as JSON that
anyone holding the deploy token can write: every field is checked for its type, and
``files`` destinations must be plain relative paths (a worker writes them under its own
directory). A wrong field is a 400 naming it, never a 500 later, or a version that loads
and then fails every call.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from champion.errors import BadRequest

HASH_RE = re.compile(r"^[0-9a-f]{64}$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
KINDS = frozenset({"POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "VAR_POSITIONAL",
                   "KEYWORD_ONLY", "VAR_KEYWORD"})
MAX_ITEMS = 10_000
REQUIRED = ("function_name", "values", "files", "imports", "helpers", "signature")


def _bad(field: str, what: str) -> BadRequest:
    return BadRequest(f"deploy manifest: {field!r} must be {what}", field=field)


def _str_list(manifest: dict[str, Any], field: str, *, pattern: re.Pattern[str] | None = None,
              required: bool = False) -> None:
    value = manifest.get(field)
    if value is None and not required:
        return
    if not isinstance(value, list) or len(value) > MAX_ITEMS or not all(
            isinstance(v, str) and "\x00" not in v and (pattern is None or pattern.match(v))
            for v in value):
        raise _bad(field, "a list of strings" if pattern is None else
                   "a list of module names (a.b.c)")


def _hash_map(manifest: dict[str, Any], field: str, key_ok: Any, what: str) -> None:
    value = manifest[field]
    if not isinstance(value, dict) or len(value) > MAX_ITEMS:
        raise _bad(field, f"an object of {what}: sha256")
    for key, digest in value.items():
        if not key_ok(key):
            raise _bad(field, f"an object of {what}: sha256 ({str(key)[:80]!r} is not one)")
        if not isinstance(digest, str) or not HASH_RE.match(digest):
            raise _bad(field, f"an object of {what}: sha256 (64 hex digits)")


def safe_relative_path(path: Any) -> bool:
    """A path that stays inside the directory it is joined to: relative, no '..', no
    backslash or NUL, not empty."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        return False
    if "\x00" in path or "\\" in path or path.startswith("/"):
        return False
    parts = PurePosixPath(path).parts
    return bool(parts) and all(p not in ("..", ".", "") for p in parts) and (
        ":" not in parts[0])


def check_manifest_shape(manifest: Any) -> dict[str, Any]:
    """``manifest`` if it has the shape champion's capture writes, else a 400 naming the
    field."""
    if not isinstance(manifest, dict):
        raise BadRequest("the deploy body needs a 'manifest' object")
    for key in REQUIRED:
        if key not in manifest:
            raise BadRequest(f"deploy manifest lacks {key!r}", field=key)
    if not isinstance(manifest["function_name"], str) or not IDENT_RE.match(
            manifest["function_name"]):
        raise _bad("function_name", "a Python identifier")
    _hash_map(manifest, "values", lambda k: isinstance(k, str) and IDENT_RE.match(k),
              "name")
    _hash_map(manifest, "files", safe_relative_path, "relative path (no '..', not absolute)")
    _str_list(manifest, "imports", required=True)
    _str_list(manifest, "helpers", required=True)
    _str_list(manifest, "modules", pattern=MODULE_RE)
    _str_list(manifest, "requirements")
    _str_list(manifest, "tags")
    signature = manifest["signature"]
    if not isinstance(signature, list) or len(signature) > 1000 or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) and p.get("kind") in KINDS
            and isinstance(p.get("default", False), bool) for p in signature):
        raise _bad("signature", 'a list of {"name", "kind", "default"} parameters')
    pickle = manifest.get("function_pickle")
    if pickle is not None and (not isinstance(pickle, str) or not HASH_RE.match(pickle)):
        raise _bad("function_pickle", "null or a sha256 (64 hex digits)")
    for field in ("packages", "value_types"):
        value = manifest.get(field)
        if value is not None and (not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise _bad(field, "an object of strings")
    for field in ("python_version", "python_request"):
        value = manifest.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            raise _bad(field, "null or a version string such as '3.12'")
    mode = manifest.get("environment_mode")
    if mode is not None and mode not in ("auto", "server"):
        raise _bad("environment_mode", "'auto' or 'server'")
    columns = manifest.get("dataframe")
    if columns is not None and (not isinstance(columns, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) for c in columns)):
        raise _bad("dataframe", 'null or a list of {"name", "dtype"} columns')
    return manifest
