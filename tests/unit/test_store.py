"""The store on SQLite and PostgreSQL: migrations, numbering, aliases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from champion.store import Store, migrations
from tests.conftest import PgDatabase, pg_available


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield ""
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    db = PgDatabase()
    yield db.url
    db.drop()


def _engine(tmp_path, url):
    return sa.create_engine(url or f"sqlite:///{tmp_path / 'champion.db'}")


def test_store_made_by_an_older_release_opens_and_keeps_its_data(tmp_path, db_url):
    engine = _engine(tmp_path, db_url)
    # Build the store as release 1 left it, with a request logged.
    with engine.begin() as conn:
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        migrations.STEPS[0](Operations(MigrationContext.configure(conn)))
        conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
        conn.execute(sa.text(
            "INSERT INTO requests (request_id, ts, deployment, target, status, latency_ms) "
            "VALUES ('r1', 1.0, 'old', 'production', 200, 1.5)"))
    engine.dispose()
    store = Store.open(tmp_path, db_url)
    try:
        with store.engine.connect() as conn:
            assert migrations.current_version(conn) == migrations.LATEST
        rows = store.query_requests("old")
        assert rows[0]["request_id"] == "r1" and rows[0]["batch_size"] == 1
    finally:
        store.close()


def test_a_newer_store_is_refused(tmp_path, db_url):
    store = Store.open(tmp_path, db_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '999' WHERE key = 'schema_version'"))
    store.close()
    with pytest.raises(migrations.SchemaTooNew, match="999"):
        Store.open(tmp_path, db_url)


def test_versions_are_numbered_per_deployment_and_aliases_follow(tmp_path, db_url):
    store = Store.open(tmp_path, db_url)
    fields = {"function_name": "f", "source": "", "python_version": "3.11.0",
              "packages": {}, "manifest": {}}
    try:
        assert store.add_version("a", "me", fields, {}) == (1, True)
        assert store.add_version("a", "me", fields, {}) == (2, False)
        assert store.add_version("b", "me", fields, {}) == (1, True)
        assert store.get_aliases("a") == {"latest": 2, "production": 1}
        assert store.set_alias("a", "production", 2, "me") == 1
        assert store.get_aliases("a")["production"] == 2
        before = store.generation()
        store.set_alias("a", "staging", 1, "me")
        assert store.generation() == before + 1
        assert store.delete_deployment("a", "me")
        assert store.add_version("a", "me", fields, {}) == (3, True)  # numbers never reused
        actions = [h["action"] for h in store.history("a")]
        assert actions[0] == "deploy" and "delete" in actions
    finally:
        store.close()


def test_sqlite_store_uses_wal(tmp_path):
    store = Store.open(tmp_path)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.close()
