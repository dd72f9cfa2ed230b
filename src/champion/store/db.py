"""The store: every SQL statement champion runs lives here.

SQLite (default; WAL, one writer at a time per process) or PostgreSQL, chosen by URL. All
methods are synchronous; callers on the event loop run them in a thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from champion.store import migrations
from champion.store import schema as t
from champion.store.artifacts import Artifacts, ArtifactStore
from champion.store.experiments import ExperimentStoreMixin
from champion.store.ledger import LedgerMixin, _insert
from champion.store.tokens import TokenStoreMixin

Row = dict[str, Any]
BUSY_TIMEOUT_MS = 30_000


def private_dir(path: Path) -> None:
    """Make ``path`` (mode 0700: the server's user alone), or tighten it if it is ours but
    readable by others. A directory of another user is left as it is."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.geteuid() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o700)


class StoreBusy(Exception):
    """A write that may not wait found the database locked by another writer."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_log_pragmas(dbapi_conn: Any, record: Any) -> None:
    """The request log's own connection: commits without an fsync each (WAL with
    synchronous=NORMAL: a commit survives the process being killed, not the machine losing
    power), and no automatic checkpoint in the middle of a request-log write."""
    _sqlite_pragmas(dbapi_conn, record)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def _sqlite_engine(data_dir: Path, pragmas: Any, pool: int) -> sa.Engine:
    engine = sa.create_engine(
        f"sqlite:///{data_dir / 'champion.db'}",
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool,
        max_overflow=pool,
    )
    sa.event.listen(engine, "connect", pragmas)
    return engine


class Store(LedgerMixin, ExperimentStoreMixin, TokenStoreMixin):
    def __init__(self, engine: sa.Engine, artifacts: Artifacts,
                 log_engine: sa.Engine | None = None) -> None:
        self.engine = engine
        # Request events go through their own connection on SQLite (see _sqlite_log_pragmas).
        self.log_engine = log_engine or engine
        self.artifacts = artifacts
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.writer = secrets.token_hex(4)  # rollup rows of this process (schema.py)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._tallies = {}  # bandit rewards summed so far (experiments.py: arm_rewards)
        self._tally_lock = threading.Lock()

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, data_dir: Path, database_url: str = "",
             artifacts_dir: Path | None = None) -> Store:
        """Open (and migrate) the store: SQLite in ``data_dir`` unless ``database_url``;
        artifacts under ``artifacts_dir`` (default ``data_dir/artifacts``)."""
        private_dir(data_dir)
        log_engine = None
        if database_url:
            engine = sa.create_engine(database_url, pool_size=8, max_overflow=8,
                                      pool_pre_ping=True)
        else:
            # champion.db holds the request-id secret and logged payloads: the owner's alone
            # (SQLite gives its -wal and -shm files the database file's mode).
            db_file = data_dir / "champion.db"
            os.close(os.open(db_file, os.O_CREAT | os.O_WRONLY, 0o600))
            for path in (db_file, data_dir / "champion.db-wal", data_dir / "champion.db-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, 0o600)
            log_engine = _sqlite_engine(data_dir, _sqlite_log_pragmas, pool=1)
            engine = _sqlite_engine(data_dir, _sqlite_pragmas, pool=8)
        try:
            migrations.migrate(engine)
        except BaseException:
            engine.dispose()
            if log_engine is not None:
                log_engine.dispose()
            raise
        store = cls(engine, ArtifactStore(artifacts_dir or data_dir / "artifacts"), log_engine)
        store.ensure_meta("generation", "0")
        store.ensure_meta("secret", secrets.token_hex(32))
        store.ensure_meta("feedback_deleted", "0")  # changed when retention deletes feedback
        return store

    def close(self) -> None:
        if self.log_engine is not self.engine:
            with contextlib.suppress(Exception):
                self.checkpoint()
            self.log_engine.dispose()
        self.engine.dispose()

    @contextmanager
    def write(self, engine: sa.Engine | None = None, *, wait: bool = True
              ) -> Iterator[sa.Connection]:
        """A write transaction; in-process writers to SQLite take turns.

        ``wait=False`` (SQLite; for a write on the event loop): raise :class:`StoreBusy` at
        once rather than wait for another writer, in this process or another.
        """
        if self._write_lock is None:
            with (engine or self.engine).begin() as conn:
                yield conn
            return
        if wait:
            with self._write_lock, (engine or self.engine).begin() as conn:
                if engine is self.log_engine:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                yield conn
            return
        if not self._write_lock.acquire(blocking=False):
            raise StoreBusy("another writer of this process holds the database")
        try:
            with (engine or self.engine).begin() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
                yield conn
        except sa.exc.OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise StoreBusy("another process holds the database's write lock") from None
            raise
        finally:
            self._write_lock.release()

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database file (the request log's connection
        does not do it as it writes); a no-op elsewhere."""
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # ---------------------------------------------------------------- meta

    def ensure_meta(self, key: str, value: str) -> str:
        with self.write() as conn:
            row = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).first()
            if row is not None:
                return str(row[0])
            conn.execute(sa.insert(t.meta).values(key=key, value=value))
            return value

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).first()
        return None if row is None else str(row[0])

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    @staticmethod
    def _bump(conn: sa.Connection) -> None:
        conn.execute(
            sa.update(t.meta)
            .where(t.meta.c.key == "generation")
            .values(value=sa.cast(sa.cast(t.meta.c.value, sa.Integer) + 1, sa.Text))
        )

    @staticmethod
    def _audit(conn: sa.Connection, actor: str, action: str, deployment: str,
               **detail: Any) -> None:
        conn.execute(
            sa.insert(t.audit).values(
                ts=time.time(), actor=actor, action=action, deployment=deployment, detail=detail
            )
        )

    # ---------------------------------------------------------------- deployments

    def get_deployment(self, name: str) -> Row | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.deployments).where(t.deployments.c.name == name)
            ).mappings().first()
        return dict(row) if row else None

    def list_deployments(self) -> list[Row]:
        v = t.versions
        latest = (
            sa.select(v.c.deployment_id, sa.func.max(v.c.number).label("latest"),
                      sa.func.count().label("version_count"))
            .group_by(v.c.deployment_id)
            .subquery()
        )
        prod = (
            sa.select(t.aliases.c.deployment_id, t.aliases.c.version.label("production"))
            .where(t.aliases.c.name == "production")
            .subquery()
        )
        q = (
            sa.select(t.deployments, latest.c.latest, latest.c.version_count, prod.c.production)
            .outerjoin(latest, latest.c.deployment_id == t.deployments.c.id)
            .outerjoin(prod, prod.c.deployment_id == t.deployments.c.id)
            .order_by(t.deployments.c.name)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def update_deployment_config(self, name: str, config: dict[str, Any], actor: str) -> None:
        with self.write() as conn:
            conn.execute(
                sa.update(t.deployments).where(t.deployments.c.name == name).values(config=config)
            )
            self._audit(conn, actor, "configure", name, config=config)
            self._bump(conn)

    def delete_deployment(self, name: str, actor: str) -> bool:
        with self.write() as conn:
            row = conn.execute(
                sa.select(t.deployments.c.id).where(t.deployments.c.name == name)
            ).first()
            if row is None:
                return False
            dep_id = row[0]
            conn.execute(sa.delete(t.aliases).where(t.aliases.c.deployment_id == dep_id))
            conn.execute(sa.delete(t.versions).where(t.versions.c.deployment_id == dep_id))
            next_version = conn.execute(
                sa.select(t.deployments.c.next_version).where(t.deployments.c.id == dep_id)
            ).scalar_one()
            conn.execute(sa.delete(t.deployments).where(t.deployments.c.id == dep_id))
            # Version numbers are never reused: a later deployment of this name goes on.
            key = f"next_version:{name}"[:64]
            conn.execute(sa.delete(t.meta).where(t.meta.c.key == key))
            conn.execute(sa.insert(t.meta).values(key=key, value=str(next_version)))
            self._audit(conn, actor, "delete", name)
            self._bump(conn)
            return True

    # ---------------------------------------------------------------- versions

    def add_version(
        self,
        name: str,
        actor: str,
        fields: dict[str, Any],
        config: dict[str, Any],
        description: str = "",
    ) -> tuple[int, bool]:
        """Create the next version of ``name`` (and the deployment on its first deploy).

        Sets ``latest``; sets ``production`` only on a deployment's first version. Returns
        (version number, whether production moved).
        """
        now = time.time()
        with self.write() as conn:
            dep = conn.execute(
                sa.select(t.deployments.c.id).where(t.deployments.c.name == name)
            ).first()
            created = False
            dep_id: int | None = None
            if dep is None:
                floor = conn.execute(
                    sa.select(t.meta.c.value).where(t.meta.c.key == f"next_version:{name}"[:64])
                ).scalar_one_or_none()
                # Concurrent first deploys of one name (replicas, PostgreSQL): one creates
                # the row, the others wait on its unique key and then use it.
                dep_id = conn.execute(
                    _insert(conn, t.deployments)
                    .values(name=name, created_at=now, created_by=actor,
                            description=description, config=config,
                            next_version=int(floor or 1))
                    .on_conflict_do_nothing(index_elements=[t.deployments.c.name])
                    .returning(t.deployments.c.id)
                ).scalar_one_or_none()
                created = dep_id is not None
                if dep_id is None:
                    dep = conn.execute(
                        sa.select(t.deployments.c.id).where(t.deployments.c.name == name)
                    ).first()
                    assert dep is not None
            if not created:
                assert dep is not None
                dep_id = dep[0]
                if config:
                    current = conn.execute(
                        sa.select(t.deployments.c.config).where(t.deployments.c.id == dep_id)
                    ).scalar_one()
                    conn.execute(
                        sa.update(t.deployments)
                        .where(t.deployments.c.id == dep_id)
                        .values(config={**(current or {}), **config})
                    )
            assert dep_id is not None
            number = conn.execute(
                sa.update(t.deployments)
                .where(t.deployments.c.id == dep_id)
                .values(next_version=t.deployments.c.next_version + 1)
                .returning(t.deployments.c.next_version)
            ).scalar_one() - 1
            conn.execute(
                sa.insert(t.versions).values(
                    deployment_id=dep_id, number=number, created_at=now, created_by=actor,
                    **fields,
                )
            )
            self._set_alias(conn, dep_id, "latest", number, actor, now)
            has_prod = conn.execute(
                sa.select(t.aliases.c.version).where(
                    t.aliases.c.deployment_id == dep_id, t.aliases.c.name == "production"
                )
            ).first()
            if has_prod is None:
                self._set_alias(conn, dep_id, "production", number, actor, now)
            self._audit(conn, actor, "deploy", name, version=number)
            self._bump(conn)
            return number, has_prod is None

    def list_versions(self, name: str) -> list[Row]:
        q = (
            sa.select(
                t.versions.c.number, t.versions.c.created_at, t.versions.c.created_by,
                t.versions.c.function_name, t.versions.c.python_version, t.versions.c.packages,
                t.versions.c.status, t.versions.c.status_message,
            )
            .join(t.deployments, t.deployments.c.id == t.versions.c.deployment_id)
            .where(t.deployments.c.name == name)
            .order_by(t.versions.c.number)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def get_version(self, name: str, number: int) -> Row | None:
        q = (
            sa.select(t.versions, t.deployments.c.name.label("deployment"))
            .join(t.deployments, t.deployments.c.id == t.versions.c.deployment_id)
            .where(t.deployments.c.name == name, t.versions.c.number == number)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def set_version_status(self, name: str, number: int, status: str, message: str = "",
                           environment: dict[str, Any] | None = None) -> bool:
        """Record a version's readiness (``building`` -> ``ready`` | ``failed``)."""
        with self.write() as conn:
            dep_id = conn.execute(
                sa.select(t.deployments.c.id).where(t.deployments.c.name == name)
            ).scalar_one_or_none()
            if dep_id is None:
                return False
            values: dict[str, Any] = {"status": status, "status_message": message}
            if environment is not None:
                values["environment"] = environment
            n = conn.execute(
                sa.update(t.versions)
                .where(t.versions.c.deployment_id == dep_id, t.versions.c.number == number)
                .values(**values)
            ).rowcount
            if n:
                self._audit(conn, "champion", "build", name, version=number, status=status,
                            message=message[:2000])
                self._bump(conn)
            return bool(n)

    def version_environments(self) -> list[dict[str, Any]]:
        """The distinct environment records of ready versions that have their own."""
        q = sa.select(t.versions.c.environment).where(
            t.versions.c.environment.is_not(None), t.versions.c.status == "ready")
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for (record,) in conn.execute(q):
                if isinstance(record, dict):
                    out[str(record.get("env_id"))] = record
        return list(out.values())

    def versions_with_status(self, status: str) -> list[tuple[str, int]]:
        q = (
            sa.select(t.deployments.c.name, t.versions.c.number)
            .join(t.deployments, t.deployments.c.id == t.versions.c.deployment_id)
            .where(t.versions.c.status == status)
        )
        with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(q)]

    # ---------------------------------------------------------------- aliases

    @staticmethod
    def _set_alias(conn: sa.Connection, dep_id: int, alias: str, number: int, actor: str,
                   now: float) -> None:
        ins = _insert(conn, t.aliases).values(
            deployment_id=dep_id, name=alias, version=number, updated_at=now,
            updated_by=actor)
        conn.execute(ins.on_conflict_do_update(
            index_elements=[t.aliases.c.deployment_id, t.aliases.c.name],
            set_={"version": ins.excluded.version, "updated_at": ins.excluded.updated_at,
                  "updated_by": ins.excluded.updated_by}))

    def set_alias(self, name: str, alias: str, number: int, actor: str,
                  reason: str = "") -> int | None:
        """Point ``alias`` at ``number``; returns the version it pointed at before."""
        now = time.time()
        with self.write() as conn:
            # The deployment's row, locked: concurrent moves of its aliases take turns, so
            # that each records the version the alias really pointed at before it.
            dep_id = conn.execute(
                sa.select(t.deployments.c.id).where(t.deployments.c.name == name)
                .with_for_update()
            ).scalar_one()
            before = conn.execute(
                sa.select(t.aliases.c.version).where(
                    t.aliases.c.deployment_id == dep_id, t.aliases.c.name == alias
                )
            ).scalar_one_or_none()
            self._set_alias(conn, dep_id, alias, number, actor, now)
            self._audit(conn, actor, "alias", name, alias=alias, version=number,
                        previous=before, reason=reason)
            self._bump(conn)
            return before

    def delete_alias(self, name: str, alias: str, actor: str) -> bool:
        with self.write() as conn:
            dep_id = conn.execute(
                sa.select(t.deployments.c.id).where(t.deployments.c.name == name)
            ).scalar_one()
            n = conn.execute(
                sa.delete(t.aliases).where(
                    t.aliases.c.deployment_id == dep_id, t.aliases.c.name == alias
                )
            ).rowcount
            if n:
                self._audit(conn, actor, "unalias", name, alias=alias)
                self._bump(conn)
            return bool(n)

    def get_aliases(self, name: str) -> dict[str, int]:
        q = (
            sa.select(t.aliases.c.name, t.aliases.c.version)
            .join(t.deployments, t.deployments.c.id == t.aliases.c.deployment_id)
            .where(t.deployments.c.name == name)
        )
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(q)}

    def all_aliases(self) -> dict[str, dict[str, int]]:
        q = sa.select(t.deployments.c.name, t.aliases.c.name, t.aliases.c.version).join(
            t.deployments, t.deployments.c.id == t.aliases.c.deployment_id
        )
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for dep, alias, version in conn.execute(q):
                out.setdefault(dep, {})[alias] = version
        return out

    def history(self, name: str, limit: int = 100) -> list[Row]:
        q = (
            sa.select(t.audit)
            .where(t.audit.c.deployment == name)
            .order_by(t.audit.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]
