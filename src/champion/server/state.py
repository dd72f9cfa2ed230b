"""The server's state container: what every handler reaches through ``app.state.champion``."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from champion.events import EventWriter, RequestIds
from champion.registry import Registry
from champion.runtime.base import BaseRuntime
from champion.runtime.envs import EnvManager
from champion.server.execution import Executor
from champion.server.telemetry import Telemetry
from champion.settings import Config
from champion.store import Store

if TYPE_CHECKING:
    from champion.controller import Controller
    from champion.server.environments import Job
    from champion.server.shadow import ShadowRunner


def load_or_create_token(config: Config) -> tuple[str, bool]:
    """The admin token: the setting, or the one kept in the data directory (made if absent)."""
    if config.token:
        return config.token, False
    path = config.data_path / "token"
    if path.is_file():
        return path.read_text().strip(), False
    token = "chp_" + secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token, True


@dataclass
class State:
    config: Config
    store: Store
    registry: Registry
    runtime: BaseRuntime
    executor: Executor
    events: EventWriter
    shadow_events: EventWriter
    ids: RequestIds
    token: str
    started: float = field(default_factory=time.time)
    telemetry: Telemetry = field(default_factory=Telemetry)
    shadows: ShadowRunner = field(init=False)
    controller: Controller = field(init=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # per-version environments being built here (server/environments.py)
    builds: dict[tuple[str, int], Job] = field(default_factory=dict)

    @property
    def envs(self) -> EnvManager | None:
        """Per-version environments (runtime/envs.py)."""
        return self.executor.envs
