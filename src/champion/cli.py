"""The ``champion`` command."""

from __future__ import annotations

import functools
import json
import os
import runpy
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from champion import __version__
from champion.errors import ChampionError
from champion.settings import SETTINGS, Config

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(1)


def handle_errors(fn: F) -> F:
    """Print champion errors as one line, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChampionError as exc:
            status = f" ({exc.status_code})" if exc.status_code else ""
            _fail(f"{exc.message}{status}")
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def client_options(fn: F) -> F:
    fn = click.option("--token", envvar="CHAMPION_TOKEN", default=None,
                      help="Admin token [env CHAMPION_TOKEN; default: DATA_DIR/token].")(fn)
    fn = click.option("--url", envvar="CHAMPION_URL", default="http://127.0.0.1:8000",
                      show_default=True, help="Server URL [env CHAMPION_URL].")(fn)
    return fn


def _client(url: str, token: str | None) -> Any:
    from champion.client import Client

    return Client(url, token)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="champion")
def main() -> None:
    """champion: deploy Python functions as versioned REST endpoints and test new versions
    on live traffic.

    Start a server with `champion serve`, or try everything with `champion demo`.
    """


# ---------------------------------------------------------------------- serve


def settings_options(fn: F) -> F:
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


@main.command()
@settings_options
def serve(**flags: Any) -> None:
    """Start the server: inference at /v1/NAME, the admin API at /api/."""
    try:
        config = Config.load(flags)
    except ValueError as exc:
        _fail(str(exc))
    run_server(config)


def run_server(config: Config) -> None:
    import uvicorn

    from champion.server.app import create_app

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


# ---------------------------------------------------------------------- deploy


@main.command()
@click.argument("target")
@click.option("--name", "-n", default=None, help="Deployment name [default: function name].")
@click.option("--package", "-p", "packages", multiple=True,
              help="Extra package requirement, e.g. pandas==2.2.0 (repeatable).")
@click.option("--file", "-f", "files", multiple=True, type=click.Path(exists=True),
              help="Extra file to ship with the version (repeatable).")
@click.option("--workers", type=int, default=None, help="Worker processes for this deployment.")
@click.option("--timeout", type=float, default=None, help="Call timeout in seconds.")
@click.option("--idle-timeout", type=float, default=None,
              help="Seconds before idle workers are stopped.")
@client_options
@handle_errors
def deploy(target: str, name: str | None, packages: tuple[str, ...], files: tuple[str, ...],
           workers: int | None, timeout: float | None, idle_timeout: float | None, url: str,
           token: str | None) -> None:
    """Deploy FILE.py:FUNCTION as a new version (for code kept in a git folder)."""
    path_text, sep, fn_name = target.rpartition(":")
    if not sep or not path_text.endswith(".py"):
        _fail("TARGET is FILE.py:FUNCTION, for example model.py:predict")
    path = Path(path_text).resolve()
    if not path.is_file():
        _fail(f"no such file: {path_text}")
    sys.path.insert(0, str(path.parent))
    old = Path.cwd()
    os.chdir(path.parent)
    try:
        namespace = runpy.run_path(str(path), run_name="__champion_deploy__")
    finally:
        os.chdir(old)
    fn = namespace.get(fn_name)
    if not callable(fn):
        _fail(f"{path_text} defines no function {fn_name!r}")
    client = _client(url, token)
    version = client.deploy(
        fn, name, python_packages=packages or None, extra_files=list(files) or None,
        workers=workers, timeout=timeout, idle_timeout=idle_timeout, root=path.parent,
    )
    for warning in version.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    prod = " (now production)" if version.production else ""
    console.print(f"deployed [bold]{version}[/]{prod}: {version.url}", highlight=False)


# ---------------------------------------------------------------------- registry


@main.command()
@client_options
@handle_errors
def deployments(url: str, token: str | None) -> None:
    """List deployments."""
    rows = _client(url, token).deployments()
    table = Table("name", "production", "latest", "versions", "created", "by")
    for r in rows:
        table.add_row(r["name"], str(r["production"] or ""), str(r["latest"] or ""),
                      str(r["versions"]), _when(r["created_at"]), r["created_by"])
    console.print(table)


@main.command()
@click.argument("name")
@client_options
@handle_errors
def versions(name: str, url: str, token: str | None) -> None:
    """List the versions of NAME with their aliases."""
    info = _client(url, token).deployment(name)
    by_version: dict[int, list[str]] = {}
    for alias, v in info["aliases"].items():
        by_version.setdefault(v, []).append(alias)
    table = Table("version", "aliases", "function", "python", "created", "by")
    for v in info["versions"]:
        table.add_row(str(v["number"]), ", ".join(sorted(by_version.get(v["number"], []))),
                      v["function_name"], v["python_version"], _when(v["created_at"]),
                      v["created_by"])
    console.print(table)


@main.command()
@click.argument("name")
@click.argument("version", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@client_options
@handle_errors
def show(name: str, version: str, as_json: bool, url: str, token: str | None) -> None:
    """Inspect a version of NAME: source, packages, values (VERSION: number or alias)."""
    info = _client(url, token).version(name, version)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    console.print(f"[bold]{name}:{info['version']}[/]  aliases: "
                  f"{', '.join(info['aliases']) or '-'}", highlight=False)
    console.print(f"created {_when(info['created_at'])} by {info['created_by']}, "
                  f"Python {info['python_version']}", highlight=False)
    if info["packages"]:
        console.print("packages: " + ", ".join(f"{k}=={v}" for k, v in
                                               sorted(info["packages"].items())))
    for key, meta in info["values"].items():
        console.print(f"value {key}: {meta['type']} (sha256 {meta['sha256'][:12]})")
    for path in info["files"]:
        console.print(f"file {path}")
    console.print(Syntax(info["source"], "python", line_numbers=False))


@main.command()
@click.argument("name")
@click.argument("version", type=int)
@client_options
@handle_errors
def promote(name: str, version: int, url: str, token: str | None) -> None:
    """Point NAME's production alias (what /v1/NAME serves) at VERSION."""
    r = _client(url, token).promote(name, version)
    console.print(f"{name}: production {r['previous']} -> {r['production']}")


@main.command()
@click.argument("name")
@click.argument("version", type=int, required=False)
@client_options
@handle_errors
def rollback(name: str, version: int | None, url: str, token: str | None) -> None:
    """Move NAME's production back to the version before (or to VERSION)."""
    r = _client(url, token).rollback(name, version)
    console.print(f"{name}: production {r['previous']} -> {r['production']}")


@main.command()
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", "remove", is_flag=True, help="Remove the alias instead.")
@client_options
@handle_errors
def alias(name: str, alias: str, version: int | None, remove: bool, url: str,
          token: str | None) -> None:
    """Point ALIAS of NAME at VERSION (or remove it with --delete)."""
    client = _client(url, token)
    if remove:
        client.delete_alias(name, alias)
        console.print(f"{name}: alias {alias} removed")
        return
    if version is None:
        _fail("give the VERSION the alias should point at")
    r = client.set_alias(name, alias, version)
    console.print(f"{name}: {alias} -> {r['version']}")


@main.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
@handle_errors
def delete(name: str, yes: bool, url: str, token: str | None) -> None:
    """Delete deployment NAME with its versions and aliases (its request log stays)."""
    if not yes:
        click.confirm(f"Delete deployment {name!r} and all its versions?", abort=True)
    _client(url, token).delete(name)
    console.print(f"deleted {name}")


@main.command()
@click.argument("name")
@click.option("--workers", type=int, default=None, help="Worker processes per version.")
@click.option("--timeout", type=float, default=None, help="Call timeout in seconds.")
@click.option("--idle-timeout", type=float, default=None,
              help="Seconds before idle workers are stopped.")
@client_options
@handle_errors
def configure(name: str, workers: int | None, timeout: float | None,
              idle_timeout: float | None, url: str, token: str | None) -> None:
    """Change NAME's runtime settings (workers, timeout, idle timeout)."""
    settings = {k: v for k, v in (("workers", workers), ("timeout", timeout),
                                  ("idle_timeout", idle_timeout)) if v is not None}
    if not settings:
        _fail("give at least one of --workers, --timeout, --idle-timeout")
    config = _client(url, token).configure(name, **settings)
    console.print(f"{name}: {json.dumps(config)}")


@main.command()
@click.argument("name")
@click.option("--limit", type=int, default=50, show_default=True)
@client_options
@handle_errors
def history(name: str, limit: int, url: str, token: str | None) -> None:
    """Show who deployed, promoted and rolled back NAME, and when."""
    rows = _client(url, token).history(name, limit)
    table = Table("when", "who", "action", "detail")
    for r in rows:
        table.add_row(_when(r["ts"]), r["actor"], r["action"], json.dumps(r["detail"]))
    console.print(table)


# ---------------------------------------------------------------------- inference and logs


@main.command()
@click.argument("name")
@click.option("--data", "-d", "data", required=True,
              help="The input as JSON, e.g. '[1, 2]' or '{\"x\": 1}'; @FILE reads a file.")
@click.option("--version", "-v", "version", default=None, help="Version number or alias.")
@click.option("--unit", default=None, help="Unit id (user, session) for sticky assignment.")
@click.option("--full", is_flag=True, help="Print the whole response, not just the data.")
@client_options
@handle_errors
def predict(name: str, data: str, version: str | None, unit: str | None, full: bool,
            url: str, token: str | None) -> None:
    """Call endpoint NAME with --data and print the answer."""
    text = Path(data[1:]).read_text() if data.startswith("@") else data
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"--data is not valid JSON: {exc}")
    reply = _client(url, token).get_inference(name, value, version=version, unit=unit)
    click.echo(json.dumps(reply if full else reply["data"]))


@main.command()
@click.argument("name")
@click.option("--limit", "-n", type=int, default=20, show_default=True,
              help="How many of the newest requests.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new requests.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@client_options
@handle_errors
def logs(name: str, limit: int, follow: bool, as_json: bool, url: str,
         token: str | None) -> None:
    """Show the request log of NAME (newest last)."""
    client = _client(url, token)
    rows = list(reversed(client.logs(name, limit=limit)))

    def show(batch: list[dict[str, Any]]) -> None:
        for r in batch:
            if as_json:
                click.echo(json.dumps(r))
                continue
            what = r["error"] or (r["output"] or "")
            console.print(
                f"{_when(r['ts'])} {r['request_id']} {r['variant'] or '-'} {r['status']} "
                f"{r['latency_ms']:.1f}ms {(r['input'] or '')[:60]} -> {what[:80]}",
                highlight=False, markup=False,
            )

    show(rows)
    if not follow:
        return
    cursor = f"{rows[-1]['ts']!r},{rows[-1]['request_id']}" if rows else f"{time.time()!r},"
    while True:
        time.sleep(1.0)
        batch = client.logs(name, limit=1000, after=cursor)
        if batch:
            show(batch)
            cursor = f"{batch[-1]['ts']!r},{batch[-1]['request_id']}"


# ---------------------------------------------------------------------- demo


@main.command()
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--requests", "n_requests", type=int, default=200, show_default=True,
              help="How much traffic to send.")
@click.option("--no-serve", is_flag=True, help="Exit after the demo instead of serving.")
@handle_errors
def demo(port: int, host: str, n_requests: int, no_serve: bool) -> None:
    """Start a server on a temporary data dir, deploy two model versions, send traffic."""
    from champion.demo import run_demo

    run_demo(host=host, port=port, n_requests=n_requests, serve_forever=not no_serve)


if __name__ == "__main__":
    main()
