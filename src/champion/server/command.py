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
    import uvicorn

    from champion.server.app import create_app, load_strategy_modules
    from champion.store import Store
    from champion.store.migrations import SchemaTooNew

    busy = port_in_use(config.host, config.port)
    if busy:
        fail(f"cannot listen on {config.host}:{config.port}: {busy} (is another champion "
             f"serve running? choose another port with --port {config.port + 1})")
    try:  # open (and migrate) the store first, so a problem is one clear line
        Store.open(config.data_path, config.database_url).close()
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
    err_console.print(
        f"champion {__version__} serving on http://{config.host}:{config.port} "
        f"(store: {store})", highlight=False,
    )
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
