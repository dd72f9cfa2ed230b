"""The ``champion`` command's client side: every command that talks to a server.

It speaks HTTP through the Python client and never imports the server or the store;
``champion serve`` is added by ``champion.main``, where the two sides meet.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.syntax import Syntax

from champion import __version__
from champion.console import console, err_console, handle_errors, print_table, user_frames
from champion.console import fail as _fail
from champion.console import when as _when
from champion.deployment_settings import DEPLOYMENT_SETTINGS

F = TypeVar("F", bound=Callable[..., Any])


def client_options(fn: F) -> F:
    fn = click.option("--token", envvar="CHAMPION_TOKEN", default=None,
                      help="Admin token [env CHAMPION_TOKEN; default: the one `champion "
                      "login` saved, or CHAMPION_HOME/token].")(fn)
    fn = click.option("--url", envvar="CHAMPION_URL", default=None,
                      help="Server URL, or host:port [env CHAMPION_URL; default: the one "
                      "`champion login` saved, or http://127.0.0.1:8000].")(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")(fn)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


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


# ---------------------------------------------------------------------- login


@main.command()
@click.argument("url", required=False)
@click.option("--token", default=None, help="The admin token [default: asked for, hidden; "
              "or CHAMPION_TOKEN].")
@handle_errors
def login(url: str | None, token: str | None) -> None:
    """Save URL and its admin token for the CLI and the Python client (a file only you can
    read), and make URL the default server.

    URL may be host:port. Afterwards `champion deployments`, `champion.connect()` and the
    rest need neither --url nor --token.
    """
    from champion.client import Client
    from champion.client.config import normalize_url, save_login

    url = normalize_url(url or os.environ.get("CHAMPION_URL") or "http://127.0.0.1:8000")
    token = token or os.environ.get("CHAMPION_TOKEN") or click.prompt(
        f"admin token for {url}", hide_input=True)
    with Client(url, token) as client:
        client.deployments()  # checks the address and the token before saving them
    path = save_login(url, token)
    console.print(f"logged in to {url}; saved in {path} (mode 600)", highlight=False)


@main.command()
@click.argument("url", required=False)
@handle_errors
def logout(url: str | None) -> None:
    """Forget the token saved for URL (default: the default server)."""
    from champion.client.config import forget

    if forget(url):
        console.print("logged out", highlight=False)
    else:
        console.print("no saved login for that server", highlight=False)


# ---------------------------------------------------------------------- deploy


@main.command()
@click.argument("target")
@click.option("--name", "-n", default=None,
              help="Deployment name [default: the function's, or the folder's name].")
@click.option("--package", "-p", "packages", multiple=True,
              help="Extra package requirement, e.g. pandas==2.2.0 (repeatable).")
@click.option("--requirements", "-r", "requirements", type=click.Path(exists=True,
              dir_okay=False), default=None,
              help="A requirements file used instead of the captured pins (FILE.py form).")
@click.option("--python", "python_version", default=None,
              help="Python version for the version, e.g. 3.12 (an interpreter installed "
              "where the server runs).")
@click.option("--file", "-f", "files", multiple=True, type=click.Path(exists=True),
              help="Extra file to ship with the version (repeatable; FILE.py form).")
@click.option("--workers", type=int, default=None, help="Worker processes for this deployment.")
@click.option("--max-workers", type=int, default=None,
              help="Above --workers: autoscale up to this many workers while calls queue "
              "and a core is idle.")
@click.option("--timeout", type=float, default=None, help="Call timeout in seconds.")
@click.option("--idle-timeout", type=float, default=None,
              help="Seconds before idle workers are stopped.")
@click.option("--batch-max-size", type=int, default=None,
              help="Above 1: micro-batching; the function takes and returns lists.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for a version's own environment to be built.")
@client_options
@handle_errors
def deploy(target: str, name: str | None, packages: tuple[str, ...], requirements: str | None,
           python_version: str | None, files: tuple[str, ...], workers: int | None,
           max_workers: int | None, timeout: float | None, idle_timeout: float | None,
           batch_max_size: int | None, wait: bool, url: str, token: str | None) -> None:
    """Deploy FILE.py:FUNCTION, or a deployment FOLDER, as a new version.

    A FOLDER is in Modelbit's git layout: source.py with the main function, metadata.yaml
    (runtimeInfo.mainFunction, pythonVersion), requirements.txt, data/*.pkl and any other
    file; the version records its git commit and whether the folder was dirty.
    """
    from champion.capture.folder import is_deployment_folder

    client = _client(url, token)
    folder = Path(target)
    if folder.is_dir():
        if not is_deployment_folder(folder):
            _fail(f"{target} is a folder without source.py and metadata.yaml (make one "
                  "with: champion init NAME)")
        if files or requirements or python_version:
            _fail("--file, --requirements and --python are for FILE.py:FUNCTION; a folder "
                  "has its files, requirements.txt and metadata.yaml's pythonVersion")
        version = client.deploy_folder(
            folder, name, python_packages=list(packages) or None, workers=workers,
            max_workers=max_workers, timeout=timeout, idle_timeout=idle_timeout,
            batch_max_size=batch_max_size, wait=wait, progress=_progress)
    else:
        path_text, sep, fn_name = target.rpartition(":")
        if not sep or not path_text.endswith(".py"):
            _fail("TARGET is FILE.py:FUNCTION (for example model.py:predict) or a "
                  "deployment folder")
        path = Path(path_text).resolve()
        if not path.is_file():
            _fail(f"no such file: {path_text}")
        sys.path.insert(0, str(path.parent))
        old = Path.cwd()
        os.chdir(path.parent)
        try:
            namespace = runpy.run_path(str(path), run_name="__champion_deploy__")
        except SyntaxError as exc:
            _fail(f"{path_text}:{exc.lineno}: SyntaxError: {exc.msg}"
                  + (f"\n  {exc.text.rstrip()}" if exc.text else ""))
        except SystemExit:
            _fail(f"{path_text} called sys.exit() while it was being imported")
        except BaseException as exc:  # the user's module raised at import
            frames = user_frames(exc, str(path))
            _fail(f"{path_text} raised {type(exc).__name__} while it was being imported: "
                  f"{exc}" + (f"\n{frames}" if frames else ""))
        finally:
            os.chdir(old)
        fn = namespace.get(fn_name)
        if not callable(fn):
            _fail(f"{path_text} defines no function {fn_name!r}")
        version = client.deploy(
            fn, name, python_packages=packages or None, requirements_txt_path=requirements,
            python_version=python_version, extra_files=list(files) or None,
            workers=workers, max_workers=max_workers, timeout=timeout,
            idle_timeout=idle_timeout, batch_max_size=batch_max_size, root=path.parent, wait=wait,
            progress=_progress)
    for warning in version.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    prod = " (now production)" if version.production else ""
    if version.status == "building":
        console.print(f"deploying [bold]{version}[/]{prod}: its environment is being built; "
                      f"follow it with: champion show {version.deployment} {version.version}",
                      highlight=False)
        return
    console.print(f"deployed [bold]{version}[/]{prod}: {version.url}", highlight=False)


def _progress(line: str) -> None:
    err_console.print(f"[dim]  {line}[/]", highlight=False)


@main.command()
@click.argument("name")
@click.option("--dir", "-d", "directory", default="deployments", show_default=True,
              help="Where the deployment's folder is made (DIR/NAME).")
@click.option("--python", "python_version", default=None,
              help="pythonVersion in metadata.yaml [default: this Python's].")
@handle_errors
def init(name: str, directory: str, python_version: str | None) -> None:
    """Make a deployment folder DIR/NAME in Modelbit's layout, ready to deploy.

    It holds source.py (a hello-world main function), metadata.yaml, an empty
    requirements.txt and data/. Deploy it with: champion deploy DIR/NAME
    """
    from champion.capture.folder import scaffold, write_folder
    from champion.names import check_name

    check_name(name)
    dest = Path(directory) / name
    if dest.exists():
        _fail(f"{dest} exists already")
    write_folder(scaffold(name, python_version, owner=_owner()), dest)
    console.print(f"made {dest}/ (source.py, metadata.yaml, requirements.txt, data/); "
                  f"deploy it with: champion deploy {dest}", highlight=False)


def _owner() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return ""


@main.command()
@click.argument("ref")
@click.argument("directory")
@click.option("--force", is_flag=True, help="Write into DIRECTORY even if it is not empty.")
@client_options
@handle_errors
def export(ref: str, directory: str, force: bool, url: str, token: str | None) -> None:
    """Write a deployed version, NAME[:VERSION] (default latest), to DIRECTORY as a
    deployment folder (source.py, metadata.yaml, requirements.txt, data/*.pkl, files).

    Commit it to git and deploy it from there with: champion deploy DIRECTORY
    """
    name, _, version = ref.partition(":")
    dest = _client(url, token).export(name, version or "latest", directory, force=force)
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    console.print(f"wrote {name}:{version or 'latest'} to {dest}/: {', '.join(written)}",
                  highlight=False)


# ---------------------------------------------------------------------- registry


@main.command()
@json_option
@client_options
@handle_errors
def deployments(as_json: bool, url: str, token: str | None) -> None:
    """List deployments."""
    rows = _client(url, token).deployments()
    if as_json:
        _echo_json(rows)
        return
    print_table(["name", "production", "latest", "versions", "created", "by"],
                [[r["name"], r["production"], r["latest"], r["versions"],
                  _when(r["created_at"]), r["created_by"]] for r in rows])


@main.command()
@click.argument("name")
@json_option
@client_options
@handle_errors
def versions(name: str, as_json: bool, url: str, token: str | None) -> None:
    """List the versions of NAME with their aliases."""
    info = _client(url, token).deployment(name)
    if as_json:
        _echo_json(info)
        return
    by_version: dict[int, list[str]] = {}
    for alias, v in info["aliases"].items():
        by_version.setdefault(v, []).append(alias)
    print_table(["version", "aliases", "function", "python", "status", "created", "by"],
                [[v["number"], ", ".join(sorted(by_version.get(v["number"], []))),
                  v["function_name"], v["python_version"], v.get("status") or "ready",
                  _when(v["created_at"]), v["created_by"]] for v in info["versions"]])


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
    status = info.get("status", "ready")
    if status != "ready":
        console.print(f"status: {status}" + (f": {info['status_message']}"
                                              if info.get("status_message") else ""),
                      highlight=False)
    env = info.get("environment")
    if env:
        size = f", {env['bytes'] / 1e6:.1f} MB" if env.get("bytes") else ""
        built = f", built in {env['build_seconds']:.1f} s" if env.get("build_seconds") else ""
        console.print(f"own environment {env.get('env_id')} (Python "
                      f"{env.get('interpreter')}{size}{built}): "
                      f"{', '.join(env.get('requirements') or []) or 'no packages'}",
                      highlight=False)
    origin = info.get("origin")
    if origin and origin.get("commit"):
        console.print(f"from {origin.get('path')} at commit {origin['commit'][:12]}"
                      + (" (dirty)" if origin.get("dirty") else ""), highlight=False)
    if info.get("dataframe_columns"):
        console.print("DataFrame mode: " + ", ".join(
            f"{c['name']} ({c.get('dtype')})" for c in info["dataframe_columns"]),
            highlight=False)
    if info["packages"]:
        console.print("packages: " + ", ".join(f"{k}=={v}" for k, v in
                                               sorted(info["packages"].items())))
    for key, meta in info["values"].items():
        console.print(f"value {key}: {meta['type']} (sha256 {meta['sha256'][:12]})")
    for path in info["files"]:
        console.print(f"file {path}")
    if info.get("pickled_function"):
        err_console.print("[yellow]note:[/] this function was pickled by value (its source "
                          "could not be read where it was defined, e.g. a plain Python "
                          "shell): the listing below may lack its body", highlight=False)
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


def _deployment_setting_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One flag per per-deployment setting, from its registry entry (type, help, bounds)."""
    for setting in reversed(DEPLOYMENT_SETTINGS):
        if setting.type is list:
            fn = click.option(setting.flag, setting.name, multiple=True,
                              help=f"{setting.help} (repeatable)")(fn)
        else:
            fn = click.option(setting.flag, setting.name, type=setting.type, default=None,
                              help=f"{setting.help} ({setting.bounds})")(fn)
    return fn


@main.command()
@click.argument("name")
@_deployment_setting_options
@client_options
@handle_errors
def configure(name: str, url: str, token: str | None, **values: Any) -> None:
    """Change NAME's runtime, batching and request-log settings."""
    settings: dict[str, Any] = {}
    for setting in DEPLOYMENT_SETTINGS:
        value = values.get(setting.name)
        if setting.type is list:
            if value:
                settings[setting.name] = list(value)
        elif value is not None:
            settings[setting.name] = value
    if not settings:
        _fail("give at least one setting to change (see --help)")
    config = _client(url, token).configure(name, **settings)
    console.print(f"{name}: {json.dumps(config)}")


@main.command()
@click.argument("name")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@client_options
@handle_errors
def history(name: str, limit: int, as_json: bool, url: str, token: str | None) -> None:
    """Show who deployed, promoted and rolled back NAME, and when."""
    rows = _client(url, token).history(name, limit)
    if as_json:
        _echo_json(rows)
        return
    print_table(["when", "who", "action", "detail"],
                [[_when(r["ts"]), r["actor"], r["action"], json.dumps(r["detail"])]
                 for r in rows])


# ---------------------------------------------------------------------- inference and logs


@main.command()
@click.argument("name")
@click.option("--data", "-d", "data", required=True,
              help="The input as JSON, e.g. '[1, 2]' or '{\"x\": 1}'; @FILE reads a file.")
@click.option("--version", "-v", "version", default=None, help="Version number or alias.")
@click.option("--unit", default=None, help="Unit id (user, session) for sticky assignment.")
@click.option("--full", is_flag=True, help="Print the whole response, not just the data.")
@click.option("--id", "id_only", is_flag=True,
              help="Print only the answer's request id (for feedback, or to capture it).")
@client_options
@handle_errors
def predict(name: str, data: str, version: str | None, unit: str | None, full: bool,
            id_only: bool, url: str, token: str | None) -> None:
    """Call endpoint NAME with --data and print the answer."""
    if data.startswith("@"):
        try:
            text = Path(data[1:]).read_text()
        except OSError as exc:
            _fail(f"--data {data}: cannot read {data[1:]}: {exc.strerror or exc}")
    else:
        text = data
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"--data is not valid JSON: {exc}")
    reply = _client(url, token).get_inference(name, value, version=version, unit=unit)
    if id_only:
        click.echo(reply["request_id"])
        return
    click.echo(json.dumps(reply if full else reply["data"]))


@main.command()
@click.argument("name")
@click.option("--limit", "-n", type=int, default=20, show_default=True,
              help="How many of the newest requests (ignored with -o).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new requests.")
@click.option("--since", default=None, help="From this time: Unix seconds, ISO 8601 or an age "
              "such as 1h or 7d.")
@click.option("--until", default=None, help="Up to this time (same forms as --since).")
@click.option("--version", "-v", "version", type=int, default=None, help="Only this version.")
@click.option("--status", type=int, default=None,
              help="Only this status (e.g. 500), or a class (5 for 5xx).")
@click.option("--unit", default=None, help="Only this unit.")
@click.option("--experiment", default=None, help="Only this experiment.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv", "parquet"]),
              default=None, help="Output format; csv and parquet need -o.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Export every matching request (with its feedback) to this file.")
@client_options
@handle_errors
def logs(name: str, limit: int, follow: bool, since: str | None, until: str | None,
         version: int | None, status: int | None, unit: str | None, experiment: str | None,
         fmt: str | None, as_json: bool, output: str | None, url: str,
         token: str | None) -> None:
    """Show or export the request log of NAME (newest last)."""
    client = _client(url, token)
    fmt = fmt or ("jsonl" if as_json else None)
    filters = {"since": since, "until": until, "version": version, "status": status,
               "unit": unit, "experiment": experiment}
    if output:
        if follow:
            _fail("--follow cannot be combined with -o")
        fmt = fmt or {".csv": "csv", ".parquet": "parquet"}.get(Path(output).suffix, "jsonl")
        if fmt == "table":
            _fail("export with -o as jsonl, csv or parquet")
        size = client.export_logs(name, output, format=fmt, **filters)
        err_console.print(f"wrote {size:,} bytes to {output} ({fmt})", highlight=False)
        return
    if fmt in ("csv", "parquet"):
        _fail(f"--format {fmt} writes a file: add -o FILE")
    rows = list(reversed(client.logs(name, limit=limit, feedback=True, **filters)))

    def show(batch: list[dict[str, Any]]) -> None:
        for r in batch:
            if fmt == "jsonl":
                click.echo(json.dumps(r))
                continue
            what = r["error"] or (r["output"] or "")
            fb = " ".join(f"{k}={v}" for k, v in (r.get("feedback") or {}).items())
            console.print(
                f"{_when(r['ts'])} {r['request_id']} {r['variant'] or '-'} {r['status']} "
                f"{r['latency_ms']:.1f}ms {(r['input'] or '')[:60]} -> {what[:80]}"
                + (f"  [{fb}]" if fb else ""),
                highlight=False, markup=False,
            )

    show(rows)
    if not follow:
        return
    cursor = f"{rows[-1]['ts']!r},{rows[-1]['request_id']}" if rows else f"{time.time()!r},"
    filters.pop("since")
    while True:
        time.sleep(1.0)
        batch = client.logs(name, limit=1000, after=cursor, **filters)
        if batch:
            show(batch)
            cursor = f"{batch[-1]['ts']!r},{batch[-1]['request_id']}"


@main.command()
@click.argument("name")
@click.option("--request-id", "-r", default=None, help="The request the outcome belongs to.")
@click.option("--unit", "-u", default=None, help="Or the unit (user, session) it belongs to.")
@click.option("--reward", type=float, default=None, help="A reward, e.g. 1 for a conversion.")
@click.option("--metric", "-m", default=None, help="A named metric (with --value).")
@click.option("--value", type=float, default=None, help="The metric's value.")
@click.option("--label", default=None, help="The ground-truth label, as JSON (e.g. 1, \"cat\").")
@click.option("--clicks", default=None, help="Clicked items as a JSON list: ids, 0-based "
              "positions or {\"item\": ID, \"weight\": W} (e.g. '[\"sku-3\", 0]').")
@click.option("--event-id", default=None, help="Makes unit feedback idempotent; with --clicks, "
              "lets one answer's clicks arrive one at a time.")
@click.option("--file", "-f", "path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A JSONL file (or JSON list) of feedback items.")
@click.option("--atomic", is_flag=True, help="With --file: store none if any item is invalid.")
@client_options
@handle_errors
def feedback(name: str, request_id: str | None, unit: str | None, reward: float | None,
             metric: str | None, value: float | None, label: str | None, clicks: str | None,
             event_id: str | None, path: str | None, atomic: bool, url: str,
             token: str | None) -> None:
    """Report outcomes for NAME's requests: a reward, a metric value, a label or clicks."""
    client = _client(url, token)
    if path:
        text = Path(path).read_text()
        try:
            items = (json.loads(text) if text.lstrip().startswith("[")
                     else [json.loads(line) for line in text.splitlines() if line.strip()])
        except json.JSONDecodeError as exc:
            _fail(f"{path} is not JSON or JSONL: {exc}")
        total = {"accepted": 0, "duplicates": 0, "rejected": 0}
        for i in range(0, len(items), 10_000):
            r = client.feedback(name, items=items[i:i + 10_000], atomic=atomic)
            for key in total:
                total[key] += r.get(key, 0)
            for e in r.get("errors", [])[:10]:
                err_console.print(f"item {e['index'] + i}: {e['message']}", highlight=False)
        console.print(f"accepted {total['accepted']}, duplicates {total['duplicates']}, "
                      f"rejected {total['rejected']}")
        return
    kwargs: dict[str, Any] = {"unit": unit, "reward": reward, "event_id": event_id}
    if metric is not None:
        kwargs.update(metric=metric, value=value)
    if label is not None:
        try:
            kwargs["label"] = json.loads(label)
        except json.JSONDecodeError:
            kwargs["label"] = label
    if clicks is not None:
        try:
            kwargs["clicks"] = json.loads(clicks)
        except json.JSONDecodeError:
            _fail(f"--clicks takes a JSON list, e.g. '[\"sku-3\", 0]', not {clicks!r}")
    r = client.feedback(name, request_id, **kwargs)
    console.print("stored" if r["accepted"] else "already stored (duplicate)")


@main.command()
@click.argument("name")
@click.option("--since", default="1h", show_default=True,
              help="From this time: an age (1h, 7d), Unix seconds or ISO 8601.")
@click.option("--until", default=None, help="Up to this time [default: now].")
@click.option("--bucket", default=None, help="Bucket width, e.g. 5m or 1h [default: range/60].")
@click.option("--buckets", "per_bucket", is_flag=True, help="Show every bucket, not just totals.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@client_options
@handle_errors
def metrics(name: str, since: str, until: str | None, bucket: str | None, per_bucket: bool,
            as_json: bool, url: str, token: str | None) -> None:
    """Requests, errors, latency and feedback of NAME per version."""
    data = _client(url, token).metrics(name, since=since, until=until, bucket=bucket)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return

    def fmt(v: Any, spec: str = ".1f") -> str:
        return "-" if v is None else format(v, spec)

    rows: list[list[Any]] = []
    for series in data["versions"]:
        cells = [("total", series["totals"])]
        if per_bucket:
            cells += [(_when(b["start"]), b) for b in series["buckets"]]
        for label, cell in cells:
            fb = ", ".join(f"{k}: {v['mean']:.3g} (n={v['count']})"
                           for k, v in cell["feedback"].items())
            acc = cell["accuracy"]
            rows.append([series["version"] or "-", label, cell["requests"],
                         fmt(cell["error_rate"], ".2%"), fmt(cell["latency_ms"]["p50"]),
                         fmt(cell["latency_ms"]["p90"]), fmt(cell["latency_ms"]["p99"]),
                         fb or "-", f"{acc['accuracy']:.1%} (n={acc['labels']})" if acc
                         else "-"])
    print_table(["version", "bucket", "requests", "error rate", "p50 ms", "p90 ms", "p99 ms",
                 "feedback", "accuracy"], rows)
    for metric, v in data.get("unit_feedback", {}).items():
        console.print(f"by unit: {metric}: mean {v['mean']:.4g} (n={v['count']})")


# ---------------------------------------------------------------------- tokens and audit


@main.group()
def tokens() -> None:
    """Create, list and revoke scoped tokens (admin, deploy, infer, feedback)."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", "-s", "scopes", multiple=True, required=True,
              type=click.Choice(["admin", "deploy", "infer", "feedback"]),
              help="What the token may do (repeat for several).")
@click.option("--rate-limit", type=float, default=None,
              help="Requests per second [default: the server's --rate-limit].")
@json_option
@client_options
@handle_errors
def tokens_create(name: str, scopes: tuple[str, ...], rate_limit: float | None,
                  as_json: bool, url: str, token: str | None) -> None:
    """Create the token NAME and print it (once: only its hash is kept)."""
    made = _client(url, token).create_token(name, list(scopes), rate_limit=rate_limit)
    if as_json:
        _echo_json(made)
        return
    err_console.print(f"token {made['name']!r} (scopes: {', '.join(made['scopes'])}); "
                      "shown once, keep it now:", highlight=False)
    click.echo(made["token"])


@tokens.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@json_option
@client_options
@handle_errors
def tokens_list(show_all: bool, as_json: bool, url: str, token: str | None) -> None:
    """List the tokens (never their secrets)."""
    rows = _client(url, token).tokens(revoked=show_all)
    if as_json:
        _echo_json(rows)
        return
    print_table(["name", "scopes", "prefix", "rate limit", "created", "by", "revoked"],
                [[r["name"], ",".join(r["scopes"]), r["prefix"] + "…",
                  "" if r["rate_limit"] is None else f"{r['rate_limit']:g}/s",
                  _when(r["created_at"]), r["created_by"], _when(r["revoked_at"])]
                 for r in rows])


@tokens.command("revoke")
@click.argument("name")
@client_options
@handle_errors
def tokens_revoke(name: str, url: str, token: str | None) -> None:
    """Revoke the token NAME: every server refuses it within a poll interval."""
    _client(url, token).revoke_token(name)
    err_console.print(f"revoked token {name!r}", highlight=False)


@main.command()
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@click.option("--token-name", "token_name", default=None, help="Only this token's actions.")
@click.option("--since", default=None, help="From this time: Unix seconds, ISO 8601 or an age "
              "such as 1h.")
@json_option
@client_options
@handle_errors
def audit(limit: int, token_name: str | None, since: str | None, as_json: bool, url: str,
          token: str | None) -> None:
    """Show the audit log: every admin action, newest first, with the token that made it."""
    rows = _client(url, token).audit(limit=limit, token=token_name, since=since)
    if as_json:
        _echo_json(rows)
        return
    print_table(["when", "token", "user", "action", "status"],
                [[_when(r["ts"]), r["token"], r["user"], f"{r['method']} {r['path']}",
                  r["status"]] for r in rows])


# ---------------------------------------------------------------------- experiments


class _ExperimentGroup(click.Group):
    """Defines ``create`` and ``update`` (a flag per strategy setting) when first asked for:
    reading the strategies imports the statistics (SciPy), a second or more that no other
    command should pay at start-up."""

    lazy = ("create", "update")

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            _strategy_commands()
        return super().get_command(ctx, cmd_name)


@main.group(cls=_ExperimentGroup)
def experiment() -> None:
    """Create, run and read experiments (A/B, canary, shadow, ...) on an endpoint."""


def _variant_pairs(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, version = item.partition("=")
        if not sep or not name or not version:
            _fail(f"--variant takes NAME=DEPLOYMENT:VERSION, got {item!r}")
        out[name] = version
    return out


def _weights(values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        name, sep, weight = item.partition("=")
        try:
            out[name] = float(weight)
        except ValueError:
            _fail(f"--weight takes NAME=NUMBER, got {item!r}")
        if not sep:
            _fail(f"--weight takes NAME=NUMBER, got {item!r}")
    return out


def _print_experiment(e: dict[str, Any]) -> None:
    console.print(f"[bold]{e['id']}[/] {e['strategy']} on {e['endpoint']}: {e['status']}",
                  highlight=False)
    for arm, version in e["variants"].items():
        extra = ""
        if "weights" in e:
            extra = f" weight {e['weights'][arm]:.3g}"
        control = " (control)" if arm == e.get("control") else ""
        console.print(f"  {arm}: {version}{extra}{control}", highlight=False)
    if e.get("decision"):
        console.print(f"  decision: {json.dumps(e['decision'])}", highlight=False)


def _builtin_strategies() -> list[Any]:
    """The strategies champion ships: a plugin's are the server's (`--set NAME=VALUE` and
    `champion experiment strategies` reach them), so the CLI's flags and help do not depend
    on what else this process happens to have imported."""
    from champion.strategies import STRATEGIES

    return sorted((s for s in STRATEGIES.values()
                   if type(s).__module__.startswith("champion.strategies.")),
                  key=lambda s: s.name)


def _strategy_fields() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Setting name -> the strategies (with the schema entry) that have it, CLI-able only."""
    fields: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for strategy in _builtin_strategies():
        for entry in strategy.schema():
            if entry["cli"]:
                fields.setdefault(entry["name"], []).append((strategy.name, entry))
    return fields


def strategy_options(fn: F) -> F:
    """A flag per strategy setting (``--steps 5,25,50,100`` for canary, ...), built from
    the registered strategies' settings, so that a new strategy's settings appear here."""
    for name, owners in sorted(_strategy_fields().items(), reverse=True):
        helps = "; ".join(f"{s}: {e['help']} [default: {e['default']}]" for s, e in owners)
        fn = click.option(f"--{name.replace('_', '-')}", name, default=None,
                          help=f"({', '.join(s for s, _ in owners)}) {helps}")(fn)
    return fn


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        nxt = target.setdefault(key, {})
        if not isinstance(nxt, dict):
            _fail(f"--set {path}: {key!r} is not an object")
        target = nxt
    target[keys[-1]] = value


def _strategy_settings(strategy: str, given: dict[str, Any], sets: tuple[str, ...]
                       ) -> dict[str, Any]:
    from champion.strategies.settings import from_text

    fields = _strategy_fields()
    out: dict[str, Any] = {}
    for name, text in given.items():
        if text is None:
            continue
        owners = dict(fields.get(name, []))
        if strategy in owners:
            try:
                out[name] = from_text(owners[strategy], text)
            except ValueError as exc:
                _fail(f"--{name.replace('_', '-')}: {exc}")
        else:
            _fail(f"--{name.replace('_', '-')} is a setting of {', '.join(owners)}, not of "
                  f"{strategy}")
    for item in sets:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            _fail(f"--set takes KEY=VALUE (VALUE as JSON), got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        _set_path(out, path, value)
    return out


def _known_strategies() -> str:
    return ", ".join(s.name for s in _builtin_strategies())


@experiment.command("strategies")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@client_options
@handle_errors
def experiment_strategies(as_json: bool, url: str, token: str | None) -> None:
    """The server's strategies and their settings (with defaults)."""
    data = _client(url, token).strategies()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for s in data:
        console.print(f"[bold]{s['name']}[/]: {s['summary']}", highlight=False)
        for f in s["settings"]:
            console.print(f"  {f['name']} ({f['type']}, default {json.dumps(f['default'])}): "
                          f"{f['help']}", highlight=False, markup=False)


@experiment.command("list")
@click.option("--endpoint", default=None)
@click.option("--status", type=click.Choice(["draft", "running", "paused", "stopped"]),
              default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the ids, one a line.")
@client_options
@handle_errors
def experiment_list(endpoint: str | None, status: str | None, as_json: bool, quiet: bool,
                    url: str, token: str | None) -> None:
    """List experiments, newest first."""
    rows = _client(url, token).experiments(endpoint, status)
    if quiet:
        for e in rows:
            click.echo(e["id"])
        return
    if as_json:
        _echo_json(rows)
        return
    print_table(["id", "endpoint", "strategy", "status", "variants", "created"],
                [[e["id"], e["endpoint"], e["strategy"], e["status"],
                  ", ".join(f"{k}={v}" for k, v in e["variants"].items()),
                  _when(e["created_at"])] for e in rows])


@experiment.command("show")
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@client_options
@handle_errors
def experiment_show(experiment_id: str, as_json: bool, url: str, token: str | None) -> None:
    """Show an experiment and its history (who changed what, when, why)."""
    e = _client(url, token).experiment(experiment_id)
    if as_json:
        click.echo(json.dumps(e, indent=2))
        return
    _print_experiment(e)
    for h in e.get("history", []):
        console.print(f"  {_when(h['ts'])} {h['actor']}: {h['action']} "
                      f"{h['from_status'] or ''} -> {h['to_status'] or ''} {h['reason']}",
                      highlight=False)


def _transition_command(action: str, help_text: str) -> None:
    @experiment.command(action, help=help_text)
    @click.argument("experiment_id")
    @click.option("--reason", default="", help="Why (recorded).")
    @client_options
    @handle_errors
    def command(experiment_id: str, reason: str, url: str, token: str | None) -> None:
        client = _client(url, token)
        e = getattr(client, f"{action}_experiment")(experiment_id, reason=reason)
        _print_experiment(e)


_transition_command("start", "Start a draft experiment.")
_transition_command("pause", "Pause: the endpoint serves production until resumed.")
_transition_command("resume", "Resume a paused experiment.")
_transition_command("rollback", "Stop now; production stays where it is (a canary's "
                    "candidate gets no more traffic).")


@experiment.command("promote")
@click.argument("experiment_id")
@click.argument("variant", required=False)
@click.option("--reason", default="", help="Why (recorded).")
@client_options
@handle_errors
def experiment_promote(experiment_id: str, variant: str | None, reason: str, url: str,
                       token: str | None) -> None:
    """Stop and make VARIANT's version production (default: the strategy's candidate, e.g.
    a canary's)."""
    _print_experiment(_client(url, token).promote_experiment(experiment_id, variant, reason))


@experiment.command("stop")
@click.argument("experiment_id")
@click.option("--promote", default=None, help="The variant whose version becomes production.")
@click.option("--reason", default="", help="Why (recorded).")
@client_options
@handle_errors
def experiment_stop(experiment_id: str, promote: str | None, reason: str, url: str,
                    token: str | None) -> None:
    """Stop an experiment, keeping control or promoting a variant."""
    _print_experiment(_client(url, token).stop_experiment(experiment_id, promote, reason))


@experiment.command("reweight")
@click.argument("experiment_id")
@click.option("--weight", "weights", multiple=True, required=True, help="NAME=WEIGHT.")
@client_options
@handle_errors
def experiment_reweight(experiment_id: str, weights: tuple[str, ...], url: str,
                        token: str | None) -> None:
    """Change A/B weights; only the units that must move change variant."""
    _print_experiment(_client(url, token).reweight(experiment_id, _weights(weights)))


@experiment.command("report")
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@client_options
@handle_errors
def experiment_report(experiment_id: str, as_json: bool, url: str, token: str | None) -> None:
    """The statistics of an experiment, and what the controller will do next."""
    from champion.reporting import render_report

    data = _client(url, token).report(experiment_id)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    render_report(data, console)


@main.command()
@click.option("--file", "-f", "path", type=click.Path(exists=True), required=True,
              help="An experiment spec (YAML or JSON), or a folder of deployment folders "
              "and experiment specs.")
@client_options
@handle_errors
def apply(path: str, url: str, token: str | None) -> None:
    """Create (and by default start) the experiment a YAML file declares; or, given a
    folder, deploy its deployment folders that are new or changed, then apply its
    experiment specs (see champion plan).

    The file holds the fields of POST /api/experiments: endpoint, strategy, variants,
    metrics, auto, alpha, name, start (default true), and the strategy's settings under its
    name (e.g. canary: {steps: [5, 25, 50, 100]}). Applied again with new weights, a running
    experiment of the same name is re-weighted.
    """
    if Path(path).is_dir():
        _apply_folder(path, url, token)
        return
    from champion.client._apply import experiment_change, read_spec

    spec = read_spec(Path(path))
    spec.setdefault("start", True)
    client = _client(url, token)
    action, e, wanted = experiment_change(client, spec)
    if e is None:
        _print_experiment(client.apply_experiment(spec))
        return
    if action == "reweight":
        e = client.reweight(e["id"], wanted, reason=f"apply {path}")
        console.print("weights updated", highlight=False)
    else:
        console.print("unchanged", highlight=False)
    _print_experiment(e)


def _apply_folder(path: str, url: str, token: str | None) -> None:
    """``apply -f FOLDER``: deployments first, then each experiment spec through the
    experiment branch of ``apply`` above."""
    from champion.client._apply import apply_deployments, plan

    client = _client(url, token)
    changes = plan(client, path)
    for change in changes:
        console.print(change.line(), highlight=False)
    apply_deployments(client, changes, _progress)
    ctx = click.get_current_context()
    for change in changes:
        if change.kind == "experiment" and change.spec is not None:
            console.print(f"{change.path}:", highlight=False)
            ctx.invoke(apply, path=str(change.spec), url=url, token=token)


@main.command()
@click.option("--file", "-f", "path", type=click.Path(exists=True), required=True,
              help="A folder of deployment folders and experiment specs, one deployment "
              "folder, or one experiment spec.")
@client_options
@handle_errors
def plan(path: str, url: str, token: str | None) -> None:
    """Show what champion apply -f PATH would change, without changing anything.

    Each line: + create, ~ change (a new version, new weights), = unchanged, ! skipped.
    """
    from champion.client._apply import plan as make_plan

    changes = make_plan(_client(url, token), path)
    for change in changes:
        console.print(change.line(), highlight=False)
    n = sum(1 for c in changes if c.changes)
    console.print(f"{n} change{'s' if n != 1 else ''} to apply" if n else "nothing to change",
                  highlight=False)


def _strategy_commands() -> None:
    """``experiment create`` and ``experiment update``, with the strategies' settings as flags."""

    @experiment.command("create")
    @click.argument("endpoint")
    @click.option("--strategy", "-s", default="ab", show_default=True,
                  help=f"One of the server's strategies ({_known_strategies()}, and any plugin).")
    @click.option("--variant", "variants", multiple=True, required=True,
                  help="NAME=DEPLOYMENT:VERSION (or an alias, pinned now); the first is the "
                  "control (the live variant, the baseline). Repeatable.")
    @click.option("--weight", "weights", multiple=True, help="NAME=WEIGHT for A/B (default equal).")
    @click.option("--name", default=None, help="A name for people.")
    @click.option("--primary", default=None, help="The metric that decides (a feedback metric).")
    @click.option("--guardrail", "guardrails", multiple=True,
                  help="METRIC or METRIC:increase (increase is bad) / METRIC:decrease.")
    @click.option("--covariate", default=None, help="A pre-period unit metric for CUPED.")
    @click.option("--auto", is_flag=True, help="Stop and promote automatically when a winner is "
                  "found by the sequential test.")
    @click.option("--alpha", type=float, default=0.05, show_default=True)
    @click.option("--set", "sets", multiple=True, help="A strategy setting as KEY=JSON, dotted "
                  "for nested ones, e.g. --set guardrails.latency.percentile=90. Repeatable.")
    @strategy_options
    @click.option("--draft", is_flag=True, help="Create without starting.")
    @click.option("--quiet", "-q", is_flag=True, help="Print only the experiment's id.")
    @client_options
    @handle_errors
    def experiment_create(endpoint: str, strategy: str, variants: tuple[str, ...],
                          weights: tuple[str, ...], name: str | None, primary: str | None,
                          guardrails: tuple[str, ...], covariate: str | None, auto: bool,
                          alpha: float, sets: tuple[str, ...], draft: bool, quiet: bool, url: str,
                          token: str | None, **strategy_flags: Any) -> None:
        """Attach an experiment to ENDPOINT.

        Strategy settings come as flags (see below; each says which strategies have it) or as
        --set KEY=JSON. Example: champion experiment create churn --strategy canary
        --variant stable=churn:1 --variant canary=churn:2 --steps 5,25,50,100
        """
        metrics: dict[str, Any] = {}
        if primary:
            metrics["primary"] = primary
        if guardrails:
            metrics["guardrails"] = [
                {"metric": g.partition(":")[0], "bad": g.partition(":")[2] or "decrease"}
                for g in guardrails]
        if covariate:
            metrics["covariate"] = covariate
        settings = _strategy_settings(strategy, strategy_flags, sets)
        e = _client(url, token).create_experiment(
            endpoint, strategy, dict(_variant_pairs(variants)), weights=_weights(weights) or None,
            name=name, metrics=metrics or None, auto=auto, alpha=alpha, start=not draft,
            **({strategy: settings} if settings else {}))
        if quiet:
            click.echo(e["id"])
            return
        _print_experiment(e)

    @experiment.command("update")
    @click.argument("experiment_id")
    @click.option("--add-variant", "add", multiple=True,
                  help="NAME=DEPLOYMENT:VERSION: a variant to add. Repeatable.")
    @click.option("--remove-variant", "remove", multiple=True,
                  help="A variant to take out of the traffic. Repeatable.")
    @click.option("--set", "sets", multiple=True, help="A strategy setting as KEY=JSON. "
                  "Repeatable.")
    @strategy_options
    @click.option("--reason", default="", help="Why (recorded).")
    @client_options
    @handle_errors
    def experiment_update(experiment_id: str, add: tuple[str, ...], remove: tuple[str, ...],
                          sets: tuple[str, ...], reason: str, url: str, token: str | None,
                          **strategy_flags: Any) -> None:
        """Change an experiment while it runs, as far as its strategy allows: add or remove
        variants (a bandit), change settings. Example: champion experiment update exp_1a2b
        --add-variant c=churn:3 --min-share 0.02"""
        client = _client(url, token)
        strategy = client.experiment(experiment_id)["strategy"]
        settings = _strategy_settings(strategy, strategy_flags, sets)
        _print_experiment(client.update_experiment(
            experiment_id, add_variants=_variant_pairs(add) or None,
            remove_variants=list(remove) or None, reason=reason,
            **({strategy: settings} if settings else {})))


# ---------------------------------------------------------------------- demo


@main.command()
@click.option("--port", type=int, default=8000, show_default=True, envvar="CHAMPION_PORT")
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
