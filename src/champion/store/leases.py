"""Leases: which server process runs the background loops, on the store's own clock.

A lease row holds a holder, a fencing epoch and an expiry in seconds on the database's
clock (``now()`` on PostgreSQL, ``julianday('now')`` on SQLite), so that no process's clock
decides. Acquiring a free (or expired) lease bumps the epoch; the holder renews before the
term runs out; every write made under the lease checks, in its own transaction, that the
holder and epoch still match and the lease has not expired (:meth:`LeaseMixin.check_fence`),
and on PostgreSQL locks the lease row for that transaction so that nobody can take the lease
over between the check and the commit. Nothing here relies on session advisory locks, which
break behind transaction-mode poolers and on connection recycling.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from champion.store import schema as t

Fence = tuple[str, str, int]  # (lease name, holder, epoch)


class LeaseLost(Exception):
    """The writer no longer holds the lease its write was fenced by."""


def server_now(conn: sa.Connection) -> float:
    """Seconds since the epoch on the database server's clock."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())"))
                     .scalar_one())
    return float(conn.execute(sa.text("SELECT (julianday('now') - 2440587.5) * 86400.0"))
                 .scalar_one())


class LeaseMixin:
    engine: sa.Engine

    def write(self, engine: sa.Engine | None = None) -> Any:  # provided by Store
        raise NotImplementedError

    def acquire_lease(self, name: str, holder: str, term: float) -> int | None:
        """Take or renew lease ``name`` for ``term`` seconds; its epoch, or None if another
        process holds it. Taking it over (first time, or after it expired) bumps the epoch."""
        lease = t.leases
        with self.write() as conn:
            now = server_now(conn)
            exists = conn.execute(sa.select(lease.c.name).where(lease.c.name == name)).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(lease).values(name=name, holder="", epoch=0,
                                                             expires_at=0.0))
                except sa.exc.IntegrityError:
                    pass  # another process created it first
            renewed = conn.execute(
                sa.update(lease)
                .where(lease.c.name == name, lease.c.holder == holder,
                       lease.c.expires_at > now)
                .values(expires_at=now + term)
                .returning(lease.c.epoch)
            ).scalar_one_or_none()
            if renewed is not None:
                return int(renewed)
            taken = conn.execute(
                sa.update(lease)
                .where(lease.c.name == name, lease.c.expires_at <= now)
                .values(holder=holder, epoch=lease.c.epoch + 1, expires_at=now + term)
                .returning(lease.c.epoch)
            ).scalar_one_or_none()
            return None if taken is None else int(taken)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once (a clean shutdown), so another process takes over."""
        lease = t.leases
        with self.write() as conn:
            conn.execute(sa.update(lease).where(lease.c.name == name, lease.c.holder == holder)
                         .values(expires_at=0.0))

    def lease_holder(self, name: str) -> dict[str, Any] | None:
        lease = t.leases
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(lease).where(lease.c.name == name)).mappings().first()
            if row is None:
                return None
            return {**dict(row), "now": server_now(conn)}

    def check_fence(self, conn: sa.Connection, fence: Fence | None) -> None:
        """Raise LeaseLost unless ``fence`` still holds (no-op for unfenced writes)."""
        if fence is None:
            return
        name, holder, epoch = fence
        lease = t.leases
        q = sa.select(lease.c.holder, lease.c.epoch, lease.c.expires_at).where(
            lease.c.name == name)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(read=True)
        row = conn.execute(q).first()
        if row is None or row[0] != holder or int(row[1]) != epoch or row[2] <= server_now(conn):
            raise LeaseLost(name)
