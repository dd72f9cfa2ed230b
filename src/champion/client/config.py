"""Where the client and the CLI find the server's URL and token.

In order, the URL: the argument (``--url``), ``$CHAMPION_URL``, the default server saved by
``champion login``, http://127.0.0.1:8000. The token: the argument (``--token``),
``$CHAMPION_TOKEN``, the token ``champion login`` saved for that URL, the ``token`` file of
the local data directory (``$CHAMPION_HOME``, default ``./champion-data``).

``champion login`` keeps its file at ``$CHAMPION_CONFIG``, or
``$XDG_CONFIG_HOME/champion/config.json`` (``~/.config/champion/config.json``), readable by
its owner only (0600).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
TOKEN_HELP = ("give the admin token with --token or CHAMPION_TOKEN, save it once with "
              "`champion login URL`, or set CHAMPION_HOME to the server's data directory "
              "(its token file; default ./champion-data)")


def config_path() -> Path:
    explicit = os.environ.get("CHAMPION_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "champion" / "config.json"


def normalize_url(url: str) -> str:
    """``host:port`` (or ``:port``) becomes ``http://host:port``; no trailing slash."""
    url = url.strip()
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        url = "http://" + (f"127.0.0.1{url}" if url.startswith(":") else url)
    return url.rstrip("/")


def load() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_login(url: str, token: str) -> Path:
    """Remember ``token`` for ``url`` and make ``url`` the default server."""
    data = load()
    url = normalize_url(url)
    servers = data.setdefault("servers", {})
    servers[url] = {"token": token}
    data["default"] = url
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def forget(url: str | None = None) -> bool:
    """Forget the token of ``url`` (default: the default server); whether one was saved."""
    data = load()
    url = normalize_url(url) if url else data.get("default")
    servers = data.get("servers") or {}
    if not url or url not in servers:
        return False
    del servers[url]
    if data.get("default") == url:
        data["default"] = next(iter(servers), None)
    path = config_path()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    return True


@dataclass(frozen=True)
class Resolved:
    url: str
    token: str | None
    token_source: str  # "argument", "CHAMPION_TOKEN", "login", "token file" or "none"


def resolve(url: str | None = None, token: str | None = None) -> Resolved:
    """The URL and token to use, from the arguments, the environment and the saved login."""
    saved = load()
    chosen = url or os.environ.get("CHAMPION_URL") or saved.get("default") or DEFAULT_URL
    chosen = normalize_url(chosen)
    if token is not None:
        return Resolved(chosen, token, "argument")
    env = os.environ.get("CHAMPION_TOKEN")
    if env:
        return Resolved(chosen, env, "CHAMPION_TOKEN")
    login = ((saved.get("servers") or {}).get(chosen) or {}).get("token")
    if login:
        return Resolved(chosen, str(login), "login")
    path = Path(os.environ.get("CHAMPION_HOME", "./champion-data")).expanduser() / "token"
    try:
        if path.is_file():
            return Resolved(chosen, path.read_text().strip(), "token file")
    except OSError:
        pass
    return Resolved(chosen, None, "none")
