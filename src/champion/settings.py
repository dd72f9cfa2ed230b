"""The one registry of settings.

Each setting has a name, a type, a default and a help text. The same entry feeds the
``champion serve`` flag (``--name-with-dashes``), the environment variable
(``CHAMPION_NAME`` unless named otherwise) and docs/configuration.md, which a test keeps
in step. Secrets are never printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    env: str = ""
    secret: bool = False
    low: float | None = None  # bounds of a number, checked when the settings are loaded
    high: float | None = None

    @property
    def env_var(self) -> str:
        return self.env or "CHAMPION_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "Address the server listens on."),
    Setting("port", int, 8000, "TCP port the server listens on."),
    Setting(
        "data_dir",
        str,
        "./champion-data",
        "Data directory: the SQLite store (champion.db), artifacts/ and the admin token.",
        env="CHAMPION_HOME",
    ),
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the store; empty means SQLite in the data directory. "
        "Example: postgresql+psycopg://user@127.0.0.1:5432/champion",
    ),
    Setting(
        "artifacts_dir",
        str,
        "",
        "Where the versions' artifact files are kept; empty means DATA_DIR/artifacts. Server "
        "replicas sharing one PostgreSQL store share this directory (see docs/scaling.md).",
    ),
    Setting(
        "token",
        str,
        "",
        "Admin token. Empty: one is generated on first start, kept in the data directory "
        "and printed once.",
        secret=True,
    ),
    Setting("require_auth", bool, False, "Require the token for inference calls as well."),
    Setting("timeout", float, 30.0, "Seconds a model call may run before it answers 504."),
    Setting("workers", int, 1, "Worker processes per deployment version (default)."),
    Setting(
        "idle_timeout",
        float,
        600.0,
        "Seconds after which an idle version's worker processes are stopped.",
    ),
    Setting(
        "max_workers",
        int,
        0,
        "Default max_workers of every version: above its workers, its workers grow to this "
        "many while calls queue and a core is idle (docs/runtime.md#autoscaling). 0: off.",
        low=0, high=1024,
    ),
    Setting(
        "scale_down_seconds",
        float,
        30.0,
        "Seconds an autoscaled worker (above a version's workers, up to its max_workers) may "
        "sit without a call before it stops.",
        low=0, high=1e6,
    ),
    Setting("max_body_bytes", int, 10 * 1024 * 1024, "Largest request body accepted (413)."),
    Setting(
        "log_payload_bytes",
        int,
        65536,
        "Largest input or output stored in the request log; larger ones are truncated.",
    ),
    Setting(
        "log_flush_ms",
        int,
        100,
        "Request-log events are written at least this often (milliseconds).",
    ),
    Setting(
        "poll_interval",
        float,
        1.0,
        "Seconds between checks for registry changes made by other server processes.",
    ),
    Setting("request_log", bool, True, "Record every inference in the request log."),
    Setting(
        "log_retention_days",
        float,
        0.0,
        "Delete request events and feedback older than this many days (0: keep forever).",
    ),
    Setting(
        "retention_interval",
        float,
        300.0,
        "Seconds between retention passes (each deletes in bounded batches).",
    ),
    Setting(
        "controller_interval",
        float,
        1.0,
        "Seconds between the controller's steps of running experiments (its tick).",
    ),
    Setting(
        "lease_seconds",
        float,
        5.0,
        "Term of the lease that lets one server process run the controller and retention; "
        "another takes over within this long when it dies.",
    ),
    Setting(
        "timeline_interval",
        float,
        10.0,
        "Seconds between the points of each running experiment's timeline (longer when "
        "building the report takes over 5 % of it).",
    ),
    Setting(
        "strategy_modules",
        str,
        "",
        "Comma-separated Python modules to import at start; each registers more experiment "
        "strategies (see docs/strategies.md).",
    ),
    Setting("log_level", str, "info", "Server log level: debug, info, warning, error."),
    Setting(
        "fork_server",
        bool,
        True,
        "Fork worker processes from a template process that has imported their libraries "
        "(fast starts, shared memory); off: every worker is a new interpreter.",
    ),
    Setting(
        "preload_modules",
        str,
        "numpy,scipy,sklearn,pandas",
        "Comma-separated modules the fork server imports at start (those installed), in this "
        "order, between deploys' requests, so that a version using them starts at once; each "
        "version's own are imported on its deploy.",
    ),
    Setting(
        "replicas",
        int,
        1,
        "Server processes on this machine, sharing the port and the store (one per core; "
        "PostgreSQL recommended: see docs/scaling.md).",
    ),
    Setting(
        "runtime",
        str,
        "local",
        "Where versions run: local (worker processes on this machine) or ray (one Ray Serve "
        "deployment per version on a Ray cluster; pip install 'champion[ray]'; see "
        "docs/scaling.md).",
    ),
    Setting(
        "ray_address",
        str,
        "",
        "With --runtime ray: the Ray cluster's address (HOST:PORT of its head, or auto); "
        "empty starts a local Ray instance inside the server.",
    ),
    Setting(
        "ray_replica_cpus",
        float,
        1.0,
        "With --runtime ray: CPUs Ray reserves for each replica of a version.",
    ),
    Setting(
        "build_timeout",
        float,
        600.0,
        "Seconds a version's own environment may take to build before its deploy fails.",
    ),
    Setting(
        "env_budget_gb",
        float,
        10.0,
        "Size budget of DATA_DIR/envs in GiB; beyond it the least recently used "
        "environments not in use are removed.",
    ),
    Setting(
        "rate_limit",
        float,
        0.0,
        "Requests per second each scoped token may make (bursts of one second's worth); "
        "over it the server answers 429 with Retry-After. A token's own limit (champion "
        "tokens create --rate-limit) wins; the admin token is not limited. 0: no limit.",
        low=0, high=1e6,
    ),
    Setting(
        "anonymous_rate_limit",
        float,
        0.0,
        "Requests per second each client address may make without a token (inference and "
        "feedback on a server without --require-auth); 429 with Retry-After beyond. 0: no "
        "limit. A proxy on another machine needs FORWARDED_ALLOW_IPS (docs/security.md).",
        low=0, high=1e6,
    ),
    Setting(
        "max_answer_bytes",
        int,
        64 * 1024 * 1024,
        "Largest answer a model's worker may send back for one request (its JSON); a larger "
        "one answers 502 answer_too_large (the worker is kept: the answer is skipped).",
        low=1024, high=2**31 - 1,
    ),
    Setting(
        "worker_memory_mb",
        int,
        0,
        "Address-space limit of each worker process in MiB (RLIMIT_AS); a model that passes "
        "it answers 502 out_of_memory. 0: no limit.",
        low=0, high=2**31 - 1,
    ),
    Setting(
        "worker_poll_us",
        int,
        1000,
        "Longest a worker polls its socket for the next call, in microseconds, before it "
        "sleeps: the window adapts (it grows while calls come within it, and shrinks to 0 "
        "when they come further apart), so an idle worker spends nothing and a busy one skips "
        "the ~50 us wake-up on each call. 0: workers always sleep.",
        low=0, high=100_000,
    ),
)

BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = "./champion-data"
    database_url: str = ""
    artifacts_dir: str = ""
    token: str = field(default="", repr=False)
    require_auth: bool = False
    timeout: float = 30.0
    workers: int = 1
    idle_timeout: float = 600.0
    max_workers: int = 0
    scale_down_seconds: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    log_payload_bytes: int = 65536
    log_flush_ms: int = 100
    poll_interval: float = 1.0
    request_log: bool = True
    log_retention_days: float = 0.0
    retention_interval: float = 300.0
    controller_interval: float = 1.0
    lease_seconds: float = 5.0
    timeline_interval: float = 10.0
    strategy_modules: str = ""
    log_level: str = "info"
    fork_server: bool = True
    preload_modules: str = "numpy,scipy,sklearn,pandas"
    replicas: int = 1
    runtime: str = "local"
    ray_address: str = ""
    ray_replica_cpus: float = 1.0
    build_timeout: float = 600.0
    env_budget_gb: float = 10.0
    rate_limit: float = 0.0
    anonymous_rate_limit: float = 0.0
    max_answer_bytes: int = 64 * 1024 * 1024
    worker_memory_mb: int = 0
    worker_poll_us: int = 1000

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def artifacts_path(self) -> Path:
        if self.artifacts_dir:
            return Path(self.artifacts_dir).expanduser().resolve()
        return self.data_path / "artifacts"

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Resolve each setting: explicit override (a CLI flag), then environment, then default."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            given = (overrides or {}).get(setting.name)
            if given is not None:
                values[setting.name] = given
            elif setting.env_var in env:
                values[setting.name] = parse(setting, env[setting.env_var])
            else:
                values[setting.name] = setting.default
            check_bounds(setting, values[setting.name])
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """Settings safe to show: secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if BY_NAME[f.name].secret and value else value
        return out


def parse(setting: Setting, text: str) -> Any:
    conv: Callable[[str], Any] = _bool if setting.type is bool else setting.type
    try:
        return conv(text)
    except ValueError as exc:
        raise ValueError(f"{setting.env_var}={text!r}: {exc}") from None


def check_bounds(setting: Setting, value: Any) -> None:
    """ValueError naming the setting when a number is outside its bounds."""
    if (setting.low is not None and value < setting.low) or (
            setting.high is not None and value > setting.high) or (
            setting.type is float and value != value):
        raise ValueError(f"{setting.flag} / {setting.env_var}: {value!r} is not between "
                         f"{setting.low} and {setting.high}")


def _check_registry() -> None:
    names = {f.name for f in fields(Config)}
    assert names == set(BY_NAME), names ^ set(BY_NAME)


_check_registry()
