"""``champion backup`` and ``champion restore``: the data directory copied on this machine
(no server needed, and none disturbed: the backup is taken while it runs)."""

from __future__ import annotations

from pathlib import Path

import click

from champion.console import err_console, fail
from champion.settings import Config


def _config(data_dir: str | None) -> Config:
    config = Config.load({"data_dir": data_dir} if data_dir else None)
    if config.database_url:
        fail("the store is PostgreSQL (CHAMPION_DATABASE_URL): back it up with pg_dump, and "
             "copy the artifacts directory; champion backup copies SQLite data directories")
    return config


def _artifacts(config: Config) -> Path | None:
    return config.artifacts_path if config.artifacts_dir else None


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--data-dir", default=None, help="The data directory to back up [env "
              "CHAMPION_HOME; default ./champion-data].")
def backup(directory: str, data_dir: str | None) -> None:
    """Back up the data directory into DIRECTORY while the server runs: SQLite's online
    backup of the database, then the artifacts and the token (DIRECTORY is made 0700)."""
    from champion.store.backup import BackupError
    from champion.store.backup import backup as backup_data_dir

    config = _config(data_dir)
    try:
        done = backup_data_dir(config.data_path, Path(directory), artifacts=_artifacts(config))
    except BackupError as exc:
        fail(str(exc))
    err_console.print(
        f"backed up {config.data_path} to {directory}: {done.deployments} deployments, "
        f"{done.versions} versions, database {done.database_bytes:,} bytes, "
        f"{done.artifacts} artifact files copied", highlight=False, soft_wrap=True)


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--data-dir", default=None, help="The data directory to restore into [env "
              "CHAMPION_HOME; default ./champion-data].")
@click.option("--force", is_flag=True, help="Replace the database already there (stop its "
              "server first).")
def restore(directory: str, data_dir: str | None, force: bool) -> None:
    """Restore the backup in DIRECTORY into the data directory; then start `champion serve`
    on it."""
    from champion.store.backup import BackupError
    from champion.store.backup import restore as restore_data_dir

    config = _config(data_dir)
    try:
        done = restore_data_dir(Path(directory), config.data_path, force=force,
                                artifacts=_artifacts(config))
    except BackupError as exc:
        fail(str(exc))
    err_console.print(
        f"restored {directory} into {config.data_path}: {done.deployments} deployments, "
        f"{done.versions} versions; start it with: champion serve --data-dir "
        f"{config.data_path}", highlight=False, soft_wrap=True)
