"""Backups of a SQLite data directory, taken while the server runs, and their restore.

The database is copied with SQLite's online backup API (a consistent snapshot, committed
write-ahead-log content included, while the server keeps reading and writing), then the
artifact files (immutable, content-addressed, each written before the version that names it
commits, so every artifact the snapshot refers to is already on disk) and the admin token
file. A backup directory is itself a data directory: ``champion serve --data-dir BACKUP``
serves it; ``restore`` copies it into a fresh data directory the same way. Directories are
created 0700, files 0600: the database holds the request-id signing secret and payloads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DB = "champion.db"
TOKEN = "token"
ARTIFACTS = "artifacts"


class BackupError(Exception):
    """Why a backup or restore cannot be made (one line for the command to print)."""


@dataclass(frozen=True)
class Copied:
    database_bytes: int
    artifacts: int
    deployments: int
    versions: int


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _copy_db(source: Path, dest: Path) -> None:
    """An online backup of ``source`` into ``dest`` (replaced), checked, mode 0600."""
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)
        out = sqlite3.connect(tmp)
        try:
            src.backup(out, pages=1024)  # in steps: the server's writers are not held up
            ok = out.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise BackupError(f"the copy of {source} fails its integrity check: {ok}")
            out.execute("PRAGMA journal_mode=WAL")
        finally:
            out.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot copy {source}: {exc}") from None
    finally:
        src.close()
    for stale in (dest.with_name(dest.name + "-wal"), dest.with_name(dest.name + "-shm")):
        stale.unlink(missing_ok=True)
    os.replace(tmp, dest)
    os.chmod(dest, 0o600)


def _copy_artifacts(source: Path, dest: Path) -> int:
    """Copy the artifact files ``dest`` lacks (they never change once written)."""
    count = 0
    if not source.is_dir():
        return 0
    _private_dir(dest)
    for path in sorted(source.glob("*/*")):
        if not path.is_file() or path.name.startswith(".tmp-"):
            continue
        target = dest / path.parent.name / path.name
        if target.is_file() and target.stat().st_size == path.stat().st_size:
            continue
        _private_dir(target.parent)
        tmp = target.with_name(".tmp-" + target.name)
        shutil.copyfile(path, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
        count += 1
    return count


def _counts(db: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        deployments = conn.execute("SELECT count(*) FROM deployments").fetchone()[0]
        versions = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    return int(deployments), int(versions)


def copy_data_dir(source: Path, dest: Path, *, artifacts: Path | None = None,
                  dest_artifacts: Path | None = None) -> Copied:
    """Copy the data directory ``source`` (its database, artifacts and token) to ``dest``."""
    db = source / DB
    if not db.is_file():
        raise BackupError(f"{source} is not a champion data directory (no {DB} in it)")
    if dest.resolve() == source.resolve():
        raise BackupError("the backup directory is the data directory itself")
    _private_dir(dest)
    _copy_db(db, dest / DB)
    count = _copy_artifacts(artifacts or source / ARTIFACTS, dest_artifacts or dest / ARTIFACTS)
    token = source / TOKEN
    if token.is_file():
        fd = os.open(dest / TOKEN, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token.read_text())
        os.chmod(dest / TOKEN, 0o600)
    deployments, versions = _counts(dest / DB)
    return Copied((dest / DB).stat().st_size, count, deployments, versions)


def backup(data_dir: Path, dest: Path, *, artifacts: Path | None = None) -> Copied:
    """A backup of the (possibly running) data directory ``data_dir`` in ``dest``."""
    if dest.exists() and any(dest.iterdir()) and not (dest / DB).is_file():
        raise BackupError(f"{dest} is not empty and holds no earlier backup; pick an empty "
                          "directory")
    return copy_data_dir(data_dir, dest, artifacts=artifacts)


def restore(backup_dir: Path, data_dir: Path, *, force: bool = False,
            artifacts: Path | None = None) -> Copied:
    """Restore ``backup_dir`` into ``data_dir``, which must hold no database unless
    ``force`` (stop the server that uses it first: its open store would not see the change)."""
    if (data_dir / DB).exists() and not force:
        raise BackupError(f"{data_dir} already holds a database; stop its server and pass "
                          "--force to replace it, or restore into a new directory")
    return copy_data_dir(backup_dir, data_dir, dest_artifacts=artifacts)
