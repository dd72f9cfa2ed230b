"""``champion serve``: the settings registry as flags, the store checked, uvicorn started."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from champion import __version__
from champion.console import err_console, fail
from champion.settings import SETTINGS, Config

F = TypeVar("F", bound=Callable[..., Any])


def settings_options(fn: F) -> F:
    """One click option per server setting (flag, env var and default from the registry)."""
    for setting in reversed(SETTINGS):
        kind: Any = click.BOOL if setting.type is bool else setting.type
        opts: dict[str, Any] = {"default": None, "help": f"{setting.help} "
                                f"[env {setting.env_var}; default {setting.default!r}]"}
        if setting.type is bool:
            fn = click.option(f"{setting.flag}/--no-{setting.flag[2:]}", setting.name,
                              **opts)(fn)
        else:
            if setting.secret:
                opts["help"] = f"{setting.help} [env {setting.env_var}]"
            fn = click.option(setting.flag, setting.name, type=kind, **opts)(fn)
    return fn


@click.command()
@settings_options
def serve(**flags: Any) -> None:
    """Start the server: inference at /v1/NAME, the admin API at /api/."""
    try:
        config = Config.load(flags)
    except ValueError as exc:
        fail(str(exc))
    run_server(config)


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None when it can."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def run_server(config: Config) -> None:
    if (config.runtime == "local" and config.fork_server and config.replicas <= 1
            and not port_in_use(config.host, config.port)):
        from champion.runtime.forks import start_early

        # first of all, so that the libraries' imports (a second for scikit-learn) run
        # beside the server's own imports and start instead of after them
        start_early(m.strip() for m in config.preload_modules.split(",") if m.strip())
    import uvicorn

    from champion.runtime.base import RUNTIMES
    from champion.server.app import create_app, load_strategy_modules
    from champion.store import Store
    from champion.store.migrations import SchemaTooNew

    if config.runtime not in RUNTIMES:
        fail(f"unknown runtime {config.runtime!r}; choose one of: {', '.join(RUNTIMES)}")
    if config.runtime == "ray":
        from champion.runtime.rayserve import check_address, ray_missing

        why = ray_missing() or check_address(config.ray_address)
        if why:
            fail(why)
        if config.replicas > 1 and not config.ray_address:
            fail("--replicas with --runtime ray needs --ray-address: the replicas share one "
                 "Ray cluster (start one with `ray start --head`)")
    busy = port_in_use(config.host, config.port)
    if busy:
        fail(f"cannot listen on {config.host}:{config.port}: {busy} (is another champion "
             f"serve running? choose another port with --port {config.port + 1})")
    try:  # open (and migrate) the store first, so a problem is one clear line
        Store.open(config.data_path, config.database_url, config.artifacts_path).close()
    except SchemaTooNew as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot open the store: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    try:
        load_strategy_modules(config.strategy_modules)
    except Exception as exc:
        fail(f"cannot load strategy_modules {config.strategy_modules!r}: "
             f"{type(exc).__name__}: {exc}")

    store = config.database_url.split("@")[-1] if config.database_url else str(
        config.data_path / "champion.db")
    replicas = max(1, config.replicas)
    err_console.print(
        f"champion {__version__} serving on http://{config.host}:{config.port} "
        f"(store: {store}" + (f", {replicas} processes" if replicas > 1 else "")
        + (f", runtime: ray at {config.ray_address or 'a local instance'}"
           if config.runtime == "ray" else "")
        + f"); dashboard: http://{config.host}:{config.port}/ui/",
        highlight=False,
    )
    options: dict[str, Any] = {
        "host": config.host, "port": config.port, "log_level": config.log_level,
        "access_log": False, "loop": "uvloop", "http": "httptools",
        "timeout_graceful_shutdown": 10,
    }
    if replicas == 1:
        uvicorn.run(create_app(config), **options)
        return
    _serve_replicas(config, replicas, options)


def _serve_replicas(config: Config, replicas: int, options: dict[str, Any]) -> None:
    """Several processes on one port (uvicorn's workers), each a full replica: its own
    worker pools, the store and the artifacts shared, the controller on one at a time."""
    import os

    import uvicorn

    from champion.server.state import load_or_create_token
    from champion.settings import SETTINGS

    if not config.database_url:
        err_console.print("[yellow]note:[/] the replicas share one SQLite file and take turns "
                          "writing to it; PostgreSQL scales further (docs/scaling.md)",
                          highlight=False)
    token, created = load_or_create_token(config)  # made once, here, not by every replica
    if created:
        print(f"champion: admin token (shown once; kept in {config.data_path / 'token'}):\n"
              f"  {token}", flush=True)
    for setting in SETTINGS:  # the replicas read their settings from the environment
        value = getattr(config, setting.name)
        if setting.name == "token":
            value = token
        os.environ[setting.env_var] = str(value).lower() if isinstance(value, bool) else str(
            value)
    os.environ["CHAMPION_REPLICAS"] = "1"
    uvicorn.run("champion.server.app:app_from_environment", factory=True, workers=replicas,
                **options)
