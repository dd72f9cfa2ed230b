"""Scoped API tokens and the audit log in the store."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from champion.store import schema as t

Row = dict[str, Any]


class TokenExists(Exception):
    """A token of that name exists (or existed: names are never reused)."""


class TokenStoreMixin:
    engine: sa.Engine

    def write(self, engine: sa.Engine | None = None) -> Any:  # provided by Store
        raise NotImplementedError

    def create_token(self, row: Row) -> None:
        """Insert a token row (its hash, never the token); TokenExists if the name is taken."""
        try:
            with self.write() as conn:
                taken = conn.execute(sa.select(t.tokens.c.name)
                                     .where(t.tokens.c.name == row["name"])).first()
                if taken is not None:
                    raise TokenExists(row["name"])
                conn.execute(sa.insert(t.tokens).values(**row))
        except sa.exc.IntegrityError:
            raise TokenExists(row["name"]) from None

    def list_tokens(self, *, revoked: bool = False) -> list[Row]:
        cols = [c for c in t.tokens.c if c.name != "hash"]
        q = sa.select(*cols).order_by(t.tokens.c.created_at)
        if not revoked:
            q = q.where(t.tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def active_tokens(self) -> list[Row]:
        """Every token not revoked, hashes included: what the server authenticates against."""
        q = sa.select(t.tokens).where(t.tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def revoke_token(self, name: str, now: float) -> bool:
        """Revoke a live token; False if there is none of that name."""
        with self.write() as conn:
            done = conn.execute(sa.update(t.tokens)
                                .where(t.tokens.c.name == name, t.tokens.c.revoked_at.is_(None))
                                .values(revoked_at=now))
            return bool(done.rowcount)

    def insert_audit_log(self, row: Row) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.audit_log).values(**row))

    def audit_log(self, limit: int = 100, *, token: str | None = None,
                  since: float | None = None) -> list[Row]:
        """Newest first."""
        q = sa.select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if token is not None:
            q = q.where(t.audit_log.c.token == token)
        if since is not None:
            q = q.where(t.audit_log.c.ts >= since)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]
