"""What a deployment's name may be: shared by the server, the CLI and the folder tools."""

from __future__ import annotations

import re

from champion.errors import BadRequest

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str) -> str:
    """``name`` if it is a valid deployment name, else BadRequest saying what is allowed."""
    if not NAME_RE.match(name or ""):
        raise BadRequest(
            f"invalid deployment name {name!r}: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name
