"""The difference between two versions: their source and their pinned packages (difflib)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

MAX_LINES = 5000


@dataclass(frozen=True)
class Line:
    kind: str  # "add", "del", "hunk", "same"
    text: str


@dataclass(frozen=True)
class VersionDiff:
    a: int
    b: int
    source: list[Line]
    packages: list[tuple[str, str | None, str | None]]  # name, in a, in b (changed only)
    python: tuple[str, str]
    truncated: bool
    # captured values and files whose content differs: (kind, name, in a, in b), where
    # "in a" is the value's type (a file: "file"), None when absent
    artifacts: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return (not self.source and not self.packages and not self.artifacts
                and self.python[0] == self.python[1])


def _lines(text: str) -> list[str]:
    return text.splitlines()


def unified(old: str, new: str, old_name: str, new_name: str,
            context: int = 3) -> tuple[list[Line], bool]:
    """Unified-diff lines, each with its kind; whether they were cut at :data:`MAX_LINES`."""
    out: list[Line] = []
    for raw in difflib.unified_diff(_lines(old), _lines(new), old_name, new_name,
                                    lineterm="", n=context):
        if raw.startswith(("---", "+++")):
            continue
        kind = ("hunk" if raw.startswith("@@") else "add" if raw.startswith("+")
                else "del" if raw.startswith("-") else "same")
        out.append(Line(kind, raw))
        if len(out) >= MAX_LINES:
            return out, True
    return out, False


def versions(name: str, a: dict[str, Any], b: dict[str, Any]) -> VersionDiff:
    """``a`` and ``b`` as the API describes a version (GET .../versions/{n})."""
    source, truncated = unified(str(a.get("source") or ""), str(b.get("source") or ""),
                                f"{name}:{a['version']}", f"{name}:{b['version']}")
    pa: dict[str, str] = dict(a.get("packages") or {})
    pb: dict[str, str] = dict(b.get("packages") or {})
    packages = [(p, pa.get(p), pb.get(p)) for p in sorted(set(pa) | set(pb))
                if pa.get(p) != pb.get(p)]
    return VersionDiff(int(a["version"]), int(b["version"]), source, packages,
                       (str(a.get("python_version", "")), str(b.get("python_version", ""))),
                       truncated, _artifacts(a, b))


def _artifacts(a: dict[str, Any], b: dict[str, Any]
               ) -> list[tuple[str, str, str | None, str | None]]:
    """Captured values (by their content's digest) and files that differ."""
    out: list[tuple[str, str, str | None, str | None]] = []
    va: dict[str, Any] = dict(a.get("values") or {})
    vb: dict[str, Any] = dict(b.get("values") or {})
    for name in sorted(set(va) | set(vb)):
        x, y = va.get(name), vb.get(name)
        if (x or {}).get("sha256") != (y or {}).get("sha256"):
            out.append(("value", name, None if x is None else str(x.get("type") or "value"),
                        None if y is None else str(y.get("type") or "value")))
    fa: dict[str, Any] = dict(a.get("files") or {})
    fb: dict[str, Any] = dict(b.get("files") or {})
    for name in sorted(set(fa) | set(fb)):
        if fa.get(name) != fb.get(name):
            out.append(("file", name, None if name not in fa else "file",
                        None if name not in fb else "file"))
    return out
