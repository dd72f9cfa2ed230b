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


def _shape(engine):
    """Tables, columns (name, type, nullability, server default), indexes and keys."""
    out = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            columns = sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                             for c in inspector.get_columns(table))
            indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]),
                              sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items()))
                             for i in inspector.get_indexes(table))
            uniques = sorted(tuple(u["column_names"])
                             for u in inspector.get_unique_constraints(table))
            key = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
            out[table] = (columns, indexes, uniques, key)
    return out


def test_a_new_store_has_the_schema_the_migration_steps_build(tmp_path, db_url):
    # An empty database is created from schema.metadata in one go; every step replayed from
    # nothing must give the same store, or an old store upgraded would differ from a new one.
    Store.open(tmp_path, db_url).close()
    engine = _engine(tmp_path, db_url)
    fresh = _shape(engine)
    engine.dispose()
    other = tmp_path / "stepped"
    other.mkdir()
    second = PgDatabase() if db_url else None
    engine = _engine(other, second.url if second else "")
    with engine.begin() as conn:
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        ops = Operations(MigrationContext.configure(conn))
        for step in migrations.STEPS:
            step(ops)
    stepped = _shape(engine)
    engine.dispose()
    if second:
        second.drop()
    assert stepped.keys() == fresh.keys()
    for table in fresh:
        assert stepped[table] == fresh[table], table


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


def test_a_lease_is_held_by_one_holder_until_it_expires_and_fences_writes(tmp_path, db_url):
    import time

    from champion.store.leases import LeaseLost

    store = Store.open(tmp_path / "data", db_url)
    try:
        first = store.acquire_lease("controller", "a", 0.6)
        assert first is not None
        assert store.acquire_lease("controller", "b", 0.6) is None  # held by a
        assert store.acquire_lease("controller", "a", 0.6) == first  # renewal keeps the epoch
        with store.write() as conn:
            store.check_fence(conn, ("controller", "a", first))
        time.sleep(0.8)
        taken = store.acquire_lease("controller", "b", 5)
        assert taken == first + 1  # a new holder, a new epoch
        with pytest.raises(LeaseLost), store.write() as conn:
            store.check_fence(conn, ("controller", "a", first))
        with pytest.raises(LeaseLost):
            store.add_snapshot("exp_x", 1.0, {}, fence=("controller", "a", first))
        store.add_snapshot("exp_x", 1.0, {"n": 1}, fence=("controller", "b", taken))
        assert store.snapshots("exp_x") == [{"ts": 1.0, "n": 1}]
        store.release_lease("controller", "b")
        assert store.acquire_lease("controller", "a", 5) == taken + 1
    finally:
        store.close()


def test_experiment_state_moves_by_version_only(tmp_path, db_url):
    from champion.store.experiments import StateConflict

    store = Store.open(tmp_path / "data", db_url)
    try:
        row = {"id": "exp_1", "name": "", "endpoint": "e", "strategy": "ab",
               "status": "draft", "config": {}, "state": {"n": 0}, "active_endpoint": None,
               "created_at": 1.0, "created_by": "t", "state_version": 0}
        store.create_experiment(row, "t")
        generation = store.generation()
        assert store.update_experiment_state("exp_1", 0, {"n": 1}, "t", "step", "why") == 1
        assert store.generation() == generation  # other processes follow the version alone
        with pytest.raises(StateConflict):
            store.update_experiment_state("exp_1", 0, {"n": 2}, "t")
        got = store.get_experiment("exp_1")
        assert got["state"] == {"n": 1} and got["state_version"] == 1
        assert [e["action"] for e in store.experiment_events("exp_1")] == ["create", "step"]
    finally:
        store.close()


def test_release_5_experiments_are_upgraded_to_the_strategy_layout():
    config = {"variants": {"c": "e:1", "t": "e:2"}, "control": "c", "alpha": 0.05,
              "policy": {"variants": ["c", "t"], "weights": [0.9, 0.1], "salt": "s1",
                         "coverage": 1.0, "owner_runs": [[0, 9000], [1, 1000]]}}
    new, state = migrations.upgrade_experiment_v6("ab", config, {"reweighted_at": 5.0})
    assert new["salt"] == "s1" and "policy" not in new
    assert new["ab"] == {"weights": {"c": 0.9, "t": 0.1}, "coverage": 1.0}
    assert state == {"weights": [0.9, 0.1], "owner_runs": [[0, 9000], [1, 1000]],
                     "reweighted_at": 5.0}
    shadow = {"variants": {"c": "e:1", "t": "e:2"}, "control": "c",
              "shadow": {"percent": 25.0, "kind": "auto", "field": None},
              "policy": {"primary": "c", "shadows": ["t"], "percents": [25.0], "salt": "s2",
                         "sample_by": "unit"}}
    new, state = migrations.upgrade_experiment_v6("shadow", shadow, {})
    assert new["shadow"] == {"percent": 25.0, "sample_by": "unit", "kind": "auto",
                             "field": None}
    assert new["salt"] == "s2" and state == {}
    from champion.strategies import get
    from tests.unit.test_strategies import exp

    get("shadow").settings(new["shadow"], exp("shadow"))  # the strategy reads it


def _logged(i: int, ts: float, *, exp: str = "exp_1") -> dict:
    return {"request_id": f"r{i:06d}", "ts": ts, "deployment": "churn", "version": 1,
            "target": "production", "status": 503 if i % 7 == 0 else 200,
            "latency_ms": 1.0 + (i % 13) / 4, "batch_size": 1,
            "unit": None if i % 3 == 0 else f"user-{i % 40}", "experiment": exp,
            "arm": ("control", "candidate")[i % 2], "variant": "churn:1", "input": None,
            "output": None, "error": None, "detail": None}


def test_a_batch_of_rows_with_different_nulls_is_stored_value_for_value(tmp_path, db_url):
    # The writer names only a row's non-NULL columns, one statement per shape: every shape
    # of one batch lands, in its columns, and a left-out column reads back NULL.
    from champion.store.ledger import REQUEST_COLUMNS

    rows = []
    for i in range(60):
        row = _logged(i, 7000.0 + i, exp="exp_1" if i % 2 else None)
        if row["experiment"] is None:
            row["arm"] = None
        if i % 3 == 0:
            row.update(input='{"data": [1, 2]}', output="[0.5]")
        if i % 4 == 0:
            row.update(status=500, error="ValueError: bad row")
        if i % 5 == 0:
            row.update(detail='{"teams": [1, 2]}', version=None)
        rows.append(row)
    store = Store.open(tmp_path, db_url)
    try:
        store.insert_requests(rows)
        got = {r["request_id"]: r for r in store.query_requests("churn", limit=1000)}
        assert len(got) == len(rows)
        for row in rows:
            stored = got[row["request_id"]]
            assert {c: stored[c] for c in REQUEST_COLUMNS} == row, row["request_id"]
    finally:
        store.close()


def _exposure_from_the_log(store, experiment):
    """What the report's exposure read before it was kept incrementally: the log itself."""
    r = sa.table("requests", *(sa.column(c) for c in ("arm", "unit", "request_id", "status",
                                                     "latency_ms", "experiment")))
    unit = sa.func.coalesce(r.c.unit, r.c.request_id)
    q = (sa.select(r.c.arm, sa.func.count(), sa.func.count(sa.distinct(unit)),
                   sa.func.sum(sa.case((r.c.status >= 500, 1), else_=0)),
                   sa.func.avg(r.c.latency_ms))
         .where(r.c.experiment == experiment).group_by(r.c.arm))
    with store.engine.connect() as conn:
        return {a: (int(n), int(u), int(e), pytest.approx(float(m), rel=1e-9))
                for a, n, u, e, m in conn.execute(q)}


def _exposure(store, experiment):
    return {a: (x["requests"], x["units"], x["errors"], x["latency_ms"]["mean"])
            for a, x in store.arm_exposure(experiment).items()}


def test_arm_exposure_kept_as_the_log_is_written_equals_the_log(tmp_path, db_url):
    store = Store.open(tmp_path, db_url)
    try:
        # three batches, units seen again across batches and minutes, two experiments
        for start in (0, 400, 800):
            store.insert_requests([_logged(i, 6000.0 + i * 0.5, exp="exp_1" if i % 5 else
                                           "exp_2") for i in range(start, start + 400)])
        for exp in ("exp_1", "exp_2"):
            assert _exposure(store, exp) == _exposure_from_the_log(store, exp)
        # retention drops what it drops from the log, by minute
        store.delete_events_before(6000.0 + 300.0)
        with store.engine.connect() as conn:
            left = conn.execute(sa.text("SELECT MIN(ts) FROM requests")).scalar()
        assert left >= 6300.0
        assert _exposure(store, "exp_1") == _exposure_from_the_log(store, "exp_1")
    finally:
        store.close()


def _release(tmp_path, db_url, version):
    """An engine on a store as release ``version`` left it (its migration steps only)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    engine = _engine(tmp_path, db_url)
    with engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        for step in migrations.STEPS[:version]:
            step(ops)
        conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"),
                     {"v": str(version)})
    return engine


def _log_raw(conn, rows):
    """Log rows as an older release's writer left them: the requests table alone."""
    conn.execute(sa.text(
        "INSERT INTO requests (request_id, ts, deployment, version, target, status, "
        "latency_ms, batch_size, unit, experiment, arm) VALUES (:request_id, :ts, "
        ":deployment, :version, :target, :status, :latency_ms, 1, :unit, :experiment, :arm)"),
        rows)


def test_a_release_10_store_fills_the_arm_totals_from_its_log(tmp_path, db_url):
    engine = _release(tmp_path, db_url, 10)
    with engine.begin() as conn:
        _log_raw(conn, [_logged(i, 6000.0 + i * 0.7) for i in range(300)])
    engine.dispose()
    store = Store.open(tmp_path, db_url)
    try:
        before = _exposure_from_the_log(store, "exp_1")
        assert _exposure(store, "exp_1") == before and sum(v[0] for v in before.values()) == 300
        store.insert_requests([_logged(i, 6300.0 + i) for i in range(300, 360)])
        assert _exposure(store, "exp_1") == _exposure_from_the_log(store, "exp_1")
    finally:
        store.close()


def _pulls_from_the_log(store, experiment, cutoff, recent_since):
    """What a bandit's pulls summed before they were read from arm_totals: every log row."""
    r = sa.table("requests", *(sa.column(c) for c in ("arm", "status", "ts", "experiment")))

    def when(cond):
        return sa.func.sum(sa.case((cond, 1), else_=0))

    q = (sa.select(r.c.arm, sa.func.count(), when(r.c.status >= 500), when(r.c.status < 400),
                   when(sa.and_(r.c.status < 400, r.c.ts < cutoff)), when(r.c.ts >= recent_since))
         .where(r.c.experiment == experiment, r.c.arm.is_not(None)).group_by(r.c.arm))
    with store.engine.connect() as conn:
        return {arm: {"requests": int(n), "errors": int(e), "answered": int(ok),
                      "answered_before": int(old), "recent": int(recent)}
                for arm, n, e, ok, old, recent in conn.execute(q)}


def _with_statuses(i: int, ts: float) -> dict:
    row = _logged(i, ts)
    row["status"] = (200, 200, 422, 503, 200, 400, 302)[i % 7]
    return row


def test_a_bandits_pulls_from_the_arm_totals_equal_the_sums_over_the_log(tmp_path, db_url):
    store = Store.open(tmp_path, db_url)
    try:
        for start in (0, 500, 1000):  # three batches over ~12 minutes
            store.insert_requests([_with_statuses(i, 6000.0 + i * 0.73)
                                   for i in range(start, start + 500)])
        # a cutoff inside a minute, on a minute's edge, before and after everything
        for cutoff in (6401.3, 6420.0, 5000.0, 9000.0):
            for recent_since in (7000.0, 6999.99, 9000.0):
                assert store.arm_pulls("exp_1", cutoff=cutoff, recent_since=recent_since) == \
                    _pulls_from_the_log(store, "exp_1", cutoff, recent_since), (cutoff,
                                                                                recent_since)
        assert store.arm_pulls("exp_none", cutoff=6400.0, recent_since=7000.0) == {}
        store.delete_events_before(6000.0 + 240.0)  # retention drops both by minute
        assert store.arm_pulls("exp_1", cutoff=6401.3, recent_since=7000.0) == \
            _pulls_from_the_log(store, "exp_1", 6401.3, 7000.0)
    finally:
        store.close()


def test_a_release_11_store_counts_its_refused_requests_into_the_arm_totals(tmp_path, db_url):
    # release 11's writer kept arm_totals without the 4xx count (two writers' rows a minute)
    engine = _release(tmp_path, db_url, 11)
    with engine.begin() as conn:
        _log_raw(conn, [_with_statuses(i, 6000.0 + i * 0.7) for i in range(400)])
        conn.execute(sa.text(
            "INSERT INTO arm_totals (experiment, arm, minute, writer, requests, errors, "
            "latency_sum, anonymous) SELECT experiment, arm, CAST(FLOOR(ts / 60) AS INTEGER) "
            "* 60, w.writer, COUNT(*), SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END), "
            "SUM(latency_ms), 0 FROM requests, (SELECT 'a' AS writer UNION SELECT 'b') w "
            "WHERE (w.writer = 'a') = (CAST(ts AS INTEGER) % 2 = 0) "
            "GROUP BY experiment, arm, CAST(FLOOR(ts / 60) AS INTEGER) * 60, w.writer"))
    engine.dispose()
    store = Store.open(tmp_path, db_url)
    try:
        with store.engine.connect() as conn:
            assert migrations.current_version(conn) == migrations.LATEST
        for cutoff in (6100.0, 6133.3):
            assert store.arm_pulls("exp_1", cutoff=cutoff, recent_since=6200.0) == \
                _pulls_from_the_log(store, "exp_1", cutoff, 6200.0)
    finally:
        store.close()


def _units_since_from_the_log(store, experiment, since):
    r = sa.table("requests", *(sa.column(c) for c in ("arm", "unit", "request_id", "ts",
                                                     "experiment")))
    unit = sa.func.coalesce(r.c.unit, r.c.request_id)
    q = (sa.select(r.c.arm, sa.func.count(sa.distinct(unit)))
         .where(r.c.experiment == experiment, r.c.arm.is_not(None), r.c.ts >= since)
         .group_by(r.c.arm))
    with store.engine.connect() as conn:
        return {arm: int(n) for arm, n in conn.execute(q)}


def test_units_since_a_reweighting_from_the_arm_units_equal_the_count_over_the_log(
        tmp_path, db_url):
    store = Store.open(tmp_path, db_url)
    try:
        # units seen again across minutes (user-{i % 40}), anonymous requests, two batches
        for start in (0, 600):
            store.insert_requests([_logged(i, 6000.0 + i * 0.61) for i in range(start,
                                                                                start + 600)])
        # units seen once each, their newest request inside the minute a `since` falls in
        early = [_logged(2000 + k, 6100.0 + k * 1.3) for k in range(60)]
        for k, row in enumerate(early):
            row["unit"] = f"early-{k}"
        store.insert_requests(early)
        for since in (5000.0, 6000.0, 6123.4, 6150.0, 6180.0, 6400.01, 6700.0, 6725.0,
                      9000.0):
            assert store.arm_units_since("exp_1", since) == \
                _units_since_from_the_log(store, "exp_1", since), since
    finally:
        store.close()


def _rewards_by_hand(items, experiment, endpoint, metric, window, cutoff, period, newest):
    """arm_rewards computed in Python over the feedback items themselves."""
    import math

    mine = [x for x in items if x["experiment"] == experiment and x["metric"] == metric
            and x["deployment"] == endpoint and x["value"] is not None
            and x["arm"] is not None and x["served_at"] is not None]
    arms, periods = {}, {}
    for x in mine:
        on = x["ts"] - x["served_at"] <= window
        v = x["value"]
        a = arms.setdefault(x["arm"], {"n": 0, "sum": 0.0, "sum_sq": 0.0, "min": None,
                                       "max": None, "non_binary": 0, "late": 0,
                                       "n_before": 0, "sum_before": 0.0})
        if not on:
            a["late"] += 1
            continue
        a["n"] += 1
        a["sum"] += v
        a["sum_sq"] += v * v
        a["min"] = v if a["min"] is None else min(a["min"], v)
        a["max"] = v if a["max"] is None else max(a["max"], v)
        a["non_binary"] += v not in (0.0, 1.0)
        if x["served_at"] < cutoff:
            a["n_before"] += 1
            a["sum_before"] += v
        p = int(x["served_at"]) - int(x["served_at"]) % period
        cell = periods.setdefault((p, x["arm"]), [0, 0.0, 0.0])
        cell[0] += 1
        cell[1] += v
        cell[2] += v * v
    on_time = [x for x in mine if x["ts"] - x["served_at"] <= window]
    on_time.sort(key=lambda x: (x["served_at"], x["i"]), reverse=True)
    for a in arms.values():
        for k in ("sum", "sum_sq", "sum_before"):
            a[k] = round(a[k], 9)
    assert all(math.isfinite(a["sum"]) for a in arms.values())
    return {"arms": arms,
            "periods": [[p, arm, n, round(s, 9), round(ss, 9)]
                        for (p, arm), (n, s, ss) in sorted(periods.items())],
            "newest": [[x["arm"], x["value"]] for x in on_time[:newest]] if newest else []}


def _rounded(got):
    for a in got["arms"].values():
        for k in ("sum", "sum_sq", "sum_before"):
            a[k] = round(a[k], 9)
    got["periods"] = [[p, arm, n, round(s, 9), round(ss, 9)]
                      for p, arm, n, s, ss in got["periods"]]
    return got


def test_arm_rewards_equal_the_sums_over_the_feedback_itself(tmp_path, db_url):
    import random

    rnd = random.Random(7)
    items = []
    for i in range(3000):
        served = 7200.0 + rnd.uniform(0, 4 * 3600)
        delay = rnd.choice([1.0, 30.0, 299.0, 301.0, 5000.0])  # on time within 300 s, or late
        value = rnd.choice([0.0, 1.0, 1.0, 0.25, 3.5, None])
        items.append({
            "i": i, "ts": served + delay, "deployment": rnd.choice(["ep", "ep", "other"]),
            "request_id": f"r{i}", "unit": None, "metric": rnd.choice(["reward", "reward",
                                                                       "clicks"]),
            "value": value, "label": None, "dedup": f"r{i}",
            "experiment": rnd.choice(["exp_1", "exp_1", "exp_1", "exp_2", None]),
            "arm": rnd.choice(["a", "b", "c", None]) , "version": 1,
            "served_at": rnd.choice([served] * 9 + [None])})
    store = Store.open(tmp_path, db_url)
    try:
        # inserted in id order = i order: newest ties on served_at break by id, as by i
        store.insert_feedback([{k: v for k, v in x.items() if k != "i"} for x in items])
        for cutoff, period, newest in ((7200.0 + 3600.0, 3600, 0), (9000.5, 600, 50),
                                       (0.0, 1, 5), (1e9, 86400, 10_000)):
            got = store.arm_rewards("exp_1", "ep", "reward", window_seconds=300.0,
                                    cutoff=cutoff, period=period, newest=newest)
            want = _rewards_by_hand(items, "exp_1", "ep", "reward", 300.0, cutoff, period,
                                    newest)
            assert _rounded(got) == want, (cutoff, period, newest)
        assert store.arm_rewards("exp_none", "ep", "reward", window_seconds=300.0,
                                 cutoff=0.0) == {"arms": {}, "periods": [], "newest": []}
    finally:
        store.close()


def test_arm_rewards_kept_as_a_tally_equal_the_sums_over_the_feedback_as_it_arrives(
        tmp_path, db_url, monkeypatch):
    # feedback arrives in three batches: the first summed into the tally (on SQLite at
    # once; on PostgreSQL only once its ids were seen REWARD_FOLD_LAG_S ago), the second read
    # whole while the lag holds it back, the third a backfill with old timestamps (the
    # tally goes by id, not by time); then retention deletes the oldest, which begins the
    # tally again. At each step arm_rewards equals the sums over the feedback itself.
    import random
    import time as clock

    from champion.store import experiments

    rnd = random.Random(11)
    items = []
    key = ("exp_1", "ep", "reward", 300.0)

    def arrive(ts_low, ts_high, count):
        batch = []
        for _ in range(count):
            i = len(items)
            ts = rnd.uniform(ts_low, ts_high)
            x = {"i": i, "ts": ts, "deployment": "ep", "request_id": f"r{i}", "unit": None,
                 "metric": rnd.choice(["reward", "reward", "clicks"]),
                 "value": rnd.choice([0.0, 1.0, 1.0, 0.5, 2.0, None]), "label": None,
                 "dedup": f"r{i}", "experiment": rnd.choice(["exp_1", "exp_1", "exp_2"]),
                 "arm": rnd.choice(["a", "b", "c", None]), "version": 1,
                 "served_at": ts - rnd.choice([0.5, 20.0, 299.0, 301.0, 4000.0])}
            items.append(x)
            batch.append({k: v for k, v in x.items() if k != "i"})
        store.insert_feedback(batch)

    def check(now):
        for cutoff, period, newest in ((now - 3600.0, 3600, 0), (now - 1234.5, 600, 20),
                                       (now - 60.0 * 40, 60, 0), (now + 100.0, 86400, 5),
                                       (now - 777.7, 7, 0), (now - 400.3, 3600, 0),
                                       (now - 100.7, 120, 0)):
            got = store.arm_rewards("exp_1", "ep", "reward", window_seconds=300.0,
                                    cutoff=cutoff, period=period, newest=newest)
            live = [x for x in items if x["ts"] >= deleted_before]
            want = _rewards_by_hand(live, "exp_1", "ep", "reward", 300.0, cutoff, period,
                                    newest)
            assert _rounded(got) == want, (cutoff, period, newest)

    def held_back(seconds):
        monkeypatch.setattr(experiments, "REWARD_FOLD_LAG_S", seconds)
        monkeypatch.setattr(experiments, "SQLITE_FOLD_LAG_S", seconds)

    store = Store.open(tmp_path, db_url)
    deleted_before = float("-inf")
    try:
        now = clock.time()
        arrive(now - 9000.0, now - 1000.0, 1500)
        check(now)
        first = store._tallies[key]
        assert bool(first.cells) == store.is_sqlite
        held_back(1e9)
        arrive(now - 250.0, now, 400)
        check(now)
        assert store._tallies[key].folded == (1500 if store.is_sqlite else 0)
        held_back(0.0)
        check(now)  # every row summed into the tally now
        assert store._tallies[key].folded == 1900 and store._tallies[key].cells
        arrive(now - 20000.0, now - 8000.0, 300)  # a backfill, with old timestamps
        check(now)
        assert store._tallies[key] is first and first.folded == 2200
        deleted_before = now - 5000.0
        while store.delete_events_before(deleted_before):
            pass
        check(now)
        assert store._tallies[key] is not first  # begun again
    finally:
        store.close()


def test_merged_requests_are_the_newest_answers_with_their_own_feedback(tmp_path, db_url):
    # An interleaving report reads the newest `limit` merged answers (a detail kept, status
    # 200) oldest first, how many there are, and the feedback of the metric sent to the
    # endpoint for those requests only, in the order it came.
    import random

    rnd = random.Random(11)
    rows = []
    for i in range(1200):
        merged = rnd.random() < 0.8
        rows.append({**_logged(i, 5000.0 + i * 0.37 + rnd.random() * 0.2,
                               exp=rnd.choice(["exp_1", "exp_1", "exp_2"])),
                     "status": rnd.choice([200, 200, 200, 500, 422]),
                     "detail": f'{{"teams": [{i}]}}' if merged else None,
                     "unit": rnd.choice([None, f"u{i % 50}"])})
    items = []
    for j in range(2500):
        r = rnd.choice(rows)
        items.append({"ts": r["ts"] + 1 + j * 1e-3, "request_id": r["request_id"], "unit": None,
                      "deployment": rnd.choice(["churn", "churn", "other"]),
                      "metric": rnd.choice(["clicks", "clicks", "reward"]),
                      "value": rnd.choice([0.0, 1.0, None]), "label": f'"i{j % 9}"',
                      "dedup": f"d{j}", "experiment": r["experiment"], "arm": r["arm"],
                      "version": 1, "served_at": r["ts"]})
    store = Store.open(tmp_path, db_url)
    try:
        store.insert_requests(rows)
        store.insert_feedback(items)
        kept = sorted((r for r in rows if r["experiment"] == "exp_1" and r["detail"]
                       and r["status"] == 200), key=lambda r: r["ts"])
        assert len(kept) > 300
        for limit in (10_000, len(kept), 300, 1):
            got = store.merged_requests("exp_1", "churn", "clicks", limit)
            newest = kept[-limit:]
            assert got["total"] == len(kept)
            assert got["requests"] == [
                {"request_id": r["request_id"], "ts": r["ts"], "detail": r["detail"],
                 "unit": r["unit"] or r["request_id"]} for r in newest]
            ids = {r["request_id"] for r in newest}
            want: dict[str, list[dict]] = {}
            for x in items:  # in id order, as inserted
                if x["request_id"] in ids and x["deployment"] == "churn" \
                        and x["metric"] == "clicks":
                    want.setdefault(x["request_id"], []).append(
                        {"label": x["label"], "value": x["value"], "ts": x["ts"]})
            assert got["feedback"] == want, limit
        assert store.merged_requests("exp_none", "churn", "clicks") == \
            {"requests": [], "total": 0, "feedback": {}}
    finally:
        store.close()
