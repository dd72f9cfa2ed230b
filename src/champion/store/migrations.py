"""Ordered schema migrations.

Each step is a function of an alembic ``Operations`` object (which speaks both SQLite,
through batch mode, and PostgreSQL). The applied step count lives in ``meta`` under
``schema_version``; opening a store applies the steps it lacks, in one transaction, so a data
directory made by an older release opens in a newer one. A store newer than this release is
refused rather than guessed at.

To change the schema: edit schema.py, then append a step here that moves an existing store
from the previous shape to the new one. Never edit a step that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from champion.store import schema

if TYPE_CHECKING:  # alembic is imported when a store needs migrating, not at every start
    from alembic.operations import Operations


def _v1_initial(op: Operations) -> None:
    """The first release's schema, spelled out so later edits to schema.py cannot change it."""
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "deployment_id",
            sa.Integer,
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
        sa.Column("function_name", sa.String(256), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("python_version", sa.String(32), nullable=False),
        sa.Column("packages", sa.JSON, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.UniqueConstraint("deployment_id", "number", name="uq_versions_deployment_number"),
    )
    op.create_table(
        "aliases",
        sa.Column(
            "deployment_id",
            sa.Integer,
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False, server_default=""),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False, server_default=""),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False, server_default=""),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_deployment_ts", "audit", ["deployment", "ts"])
    # The request log as first released, without batch_size (added by step 2).
    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("target", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("unit", sa.String(256), nullable=True),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("variant", sa.String(160), nullable=True),
        sa.Column("input", sa.Text, nullable=True),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_requests_deployment_ts", "requests", ["deployment", "ts"])


def _v2_request_batch_size(op: Operations) -> None:
    """Record how many rows a request carried, and index the log by time for retention."""
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("batch_size", sa.Integer, nullable=False, server_default="1"))
    op.create_index("ix_requests_ts", "requests", ["ts"])


def _v3_feedback_and_rollups(op: Operations) -> None:
    """The feedback ledger, and per-minute rollups of the request log for fast metrics."""
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("unit", sa.String(256), nullable=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("dedup", sa.String(320), nullable=True),
        sa.UniqueConstraint("deployment", "dedup", "metric", name="uq_feedback_dedup"),
    )
    op.create_index("ix_feedback_deployment_ts", "feedback", ["deployment", "ts"])
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_index("ix_feedback_unit", "feedback", ["deployment", "unit"])
    op.create_table(
        "rollup_minutes",
        sa.Column("deployment", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("minute", sa.Integer, primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("latency_sum", sa.Float, nullable=False),
    )
    op.create_table(
        "rollup_latency",
        sa.Column("deployment", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("minute", sa.Integer, primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_requests_unit", "requests", ["deployment", "unit"])


def _v4_experiments(op: Operations) -> None:
    """Experiments, their transitions, shadow answers, and the arm of each request."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, server_default=""),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("active_endpoint", sa.String(128), nullable=True, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("stopped_at", sa.Float, nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
    )
    op.create_index("ix_experiments_endpoint", "experiments", ["endpoint"])
    op.create_table(
        "experiment_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False, server_default=""),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_experiment_events_experiment", "experiment_events", ["experiment_id"])
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("arm", sa.String(64), nullable=True))
    op.create_index("ix_requests_experiment_arm", "requests", ["experiment", "arm"])
    op.create_table(
        "shadow_events",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("arm", sa.String(64), primary_key=True),
        sa.Column("experiment", sa.String(32), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("variant", sa.String(160), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_shadow_events_experiment_ts", "shadow_events", ["experiment", "ts"])
    op.create_table(
        "rollup_arms",
        sa.Column("experiment", sa.String(32), primary_key=True),
        sa.Column("arm", sa.String(64), primary_key=True),
        sa.Column("minute", sa.Integer, primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def _v5_leaner_request_indexes(op: Operations) -> None:
    """Fewer indexes to maintain per logged request (each cost write throughput).

    ts alone (retention deletes the oldest rows, which come first in insertion order anyway)
    and (deployment, unit) (a rare filter, served by the deployment's time index) go; the
    experiment index covers only rows that belong to an experiment.
    """
    op.drop_index("ix_requests_ts", table_name="requests")
    op.drop_index("ix_requests_unit", table_name="requests")
    op.drop_index("ix_requests_experiment_arm", table_name="requests")
    op.create_index("ix_requests_experiment_arm", "requests", ["experiment", "arm"],
                    sqlite_where=sa.text("experiment IS NOT NULL"),
                    postgresql_where=sa.text("experiment IS NOT NULL"))


def upgrade_experiment_v6(strategy: str, config: dict[str, Any], state: dict[str, Any]
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """An experiment's config and state from release 5's layout (one routing ``policy``
    config, strategy fields scattered) to release 6's (settings under the strategy's key,
    the salt beside the variants, the hot state complete)."""
    if "policy" not in config:
        return config, state
    config = dict(config)
    policy = config.pop("policy")
    config["salt"] = str(policy.get("salt", ""))
    if strategy == "ab":
        weights = dict(zip(policy["variants"], policy["weights"], strict=True))
        config["ab"] = {"weights": weights, "coverage": policy.get("coverage", 1.0)}
        state = {"weights": state.get("weights", policy["weights"]),
                 "owner_runs": state.get("owner_runs", policy.get("owner_runs")),
                 **{k: v for k, v in state.items() if k == "reweighted_at"}}
    elif strategy == "shadow":
        old = config.pop("shadow", {}) or {}
        percents = policy.get("percents") or [policy.get("percent", 100.0)]
        config["shadow"] = {"percent": float(old.get("percent", percents[0])),
                            "sample_by": policy.get("sample_by", "request"),
                            "kind": old.get("kind", "auto"), "field": old.get("field")}
    return config, state


def _v6_strategies_and_controller(op: Operations) -> None:
    """Experiment state versioned on its own (a state change no longer reloads the whole
    registry), a lease for the one process that runs the background loops, each
    experiment's timeline, a per-request detail (what a strategy must remember of a merged
    answer), a time-ordered experiment index for windows, and the release-6 config layout."""
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("state_version", sa.Integer, nullable=False,
                                   server_default="0"))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False, server_default=""),
        sa.Column("epoch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_table(
        "experiment_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("point", sa.JSON, nullable=False),
    )
    op.create_index("ix_experiment_snapshots_experiment_ts", "experiment_snapshots",
                    ["experiment_id", "ts"])
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("detail", sa.Text, nullable=True))
    op.drop_index("ix_requests_experiment_arm", table_name="requests")
    op.create_index("ix_requests_experiment_arm", "requests", ["experiment", "arm", "ts"],
                    sqlite_where=sa.text("experiment IS NOT NULL"),
                    postgresql_where=sa.text("experiment IS NOT NULL"))
    conn = op.get_bind()
    e = sa.table("experiments", sa.column("id", sa.String), sa.column("strategy", sa.String),
                 sa.column("config", sa.JSON), sa.column("state", sa.JSON))
    for row in conn.execute(sa.select(e)).mappings().all():
        config, state = upgrade_experiment_v6(row["strategy"], dict(row["config"] or {}),
                                              dict(row["state"] or {}))
        conn.execute(sa.update(e).where(e.c.id == row["id"]).values(config=config,
                                                                    state=state))


def _v7_rollups_per_writer(op: Operations) -> None:
    """Rollups keyed by their writer too (one per server process), so that replicas sharing
    a store never update the same rollup row. Existing rows keep the writer ''."""
    conn = op.get_bind()
    keys = {"rollup_minutes": ["deployment", "version", "minute"],
            "rollup_latency": ["deployment", "version", "minute", "bin"],
            "rollup_arms": ["experiment", "arm", "minute", "bin"]}
    columns: dict[str, list[sa.Column[Any]]] = {
        "rollup_minutes": [sa.Column("deployment", sa.String(128)),
                           sa.Column("version", sa.Integer), sa.Column("minute", sa.Integer),
                           sa.Column("requests", sa.Integer, nullable=False),
                           sa.Column("errors", sa.Integer, nullable=False),
                           sa.Column("latency_sum", sa.Float, nullable=False)],
        "rollup_latency": [sa.Column("deployment", sa.String(128)),
                           sa.Column("version", sa.Integer), sa.Column("minute", sa.Integer),
                           sa.Column("bin", sa.Integer),
                           sa.Column("count", sa.Integer, nullable=False)],
        "rollup_arms": [sa.Column("experiment", sa.String(32)), sa.Column("arm", sa.String(64)),
                        sa.Column("minute", sa.Integer), sa.Column("bin", sa.Integer),
                        sa.Column("count", sa.Integer, nullable=False)],
    }
    for name, cols in columns.items():
        new = f"{name}_v7"
        pk = [*keys[name], "writer"]  # the old key first: readers' lookups by prefix
        op.create_table(new, *[sa.Column(c.name, c.type, nullable=False) for c in cols],
                        sa.Column("writer", sa.String(16), nullable=False, server_default=""),
                        sa.PrimaryKeyConstraint(*pk, name=f"pk_{name}"))
        names = ", ".join(c.name for c in cols)
        conn.execute(sa.text(f"INSERT INTO {new} (writer, {names}) SELECT '', {names} "
                             f"FROM {name}"))
        op.drop_table(name)
        op.rename_table(new, name)


def _v8_version_status_and_origin(op: Operations) -> None:
    """A version's readiness (its own environment is built before it serves), what that
    environment holds, and where the version came from (a git folder's commit)."""
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="ready"))
        batch.add_column(sa.Column("status_message", sa.Text, nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("environment", sa.JSON, nullable=True))
        batch.add_column(sa.Column("origin", sa.JSON, nullable=True))


def _v9_feedback_attribution(op: Operations) -> None:
    """What served each request, on its feedback rows: the experiment, the arm, the version
    and when, as the request's signed id carries them, so that feedback is credited without
    the request log; an index for an experiment's rewards of one metric in serving order."""
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("experiment", sa.String(32), nullable=True))
        batch.add_column(sa.Column("arm", sa.String(64), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer, nullable=True))
        batch.add_column(sa.Column("served_at", sa.Float, nullable=True))
    op.create_index("ix_feedback_experiment", "feedback", ["experiment", "metric", "served_at"],
                    sqlite_where=sa.text("experiment IS NOT NULL"),
                    postgresql_where=sa.text("experiment IS NOT NULL"))


def _v10_tokens_and_audit_log(op: Operations) -> None:
    """Scoped API tokens (hashed), and the audit log of every admin action by token."""
    op.create_table(
        "tokens",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("rate_limit", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column("user", sa.String(128), nullable=False, server_default=""),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("deployment", sa.String(128), nullable=True),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])


def _v11_arm_totals_and_units(op: Operations) -> None:
    """Per-arm exposure kept as the log is written (an A/B report counted distinct units over
    the experiment's log rows: seconds at a million requests, every timeline point), filled
    here from the log an older release wrote."""
    op.create_table(
        "arm_totals",
        sa.Column("experiment", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("minute", sa.Integer, nullable=False),
        sa.Column("writer", sa.String(16), nullable=False, server_default=""),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("latency_sum", sa.Float, nullable=False),
        sa.Column("anonymous", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("experiment", "arm", "minute", "writer",
                                name="pk_arm_totals"),
    )
    op.create_table(
        "arm_units",
        sa.Column("experiment", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(256), nullable=False),
        sa.Column("minute", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("experiment", "arm", "unit", name="pk_arm_units"),
    )
    conn = op.get_bind()
    # the minute of a (positive) timestamp: truncation on SQLite, floor on PostgreSQL
    minute = ("CAST(FLOOR(ts / 60) AS INTEGER) * 60" if conn.dialect.name == "postgresql"
              else "CAST(ts / 60 AS INTEGER) * 60")
    logged = "FROM requests WHERE experiment IS NOT NULL AND arm IS NOT NULL"
    conn.execute(sa.text(
        "INSERT INTO arm_totals (experiment, arm, minute, writer, requests, errors, "
        "latency_sum, anonymous) "
        f"SELECT experiment, arm, {minute}, '', COUNT(*), "
        "SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END), SUM(latency_ms), "
        f"SUM(CASE WHEN unit IS NULL THEN 1 ELSE 0 END) {logged} "
        f"GROUP BY experiment, arm, {minute}"))
    conn.execute(sa.text(
        f"INSERT INTO arm_units (experiment, arm, unit, minute) "
        f"SELECT experiment, arm, unit, MAX({minute}) {logged} AND unit IS NOT NULL "
        "GROUP BY experiment, arm, unit"))


def _v12_arm_rejected(op: Operations) -> None:
    """Per arm and minute, the requests refused with a 4xx (a bandit's pulls count the
    answered ones, status below 400: it summed them over every log row of the experiment,
    at each update), filled here from the log into one writer's row of each minute."""
    op.add_column("arm_totals", sa.Column("rejected", sa.Integer, nullable=False,
                                          server_default="0"))
    op.get_bind().execute(sa.text(
        "UPDATE arm_totals SET rejected = (SELECT COUNT(*) FROM requests r "
        "WHERE r.experiment = arm_totals.experiment AND r.arm = arm_totals.arm "
        "AND r.ts >= arm_totals.minute AND r.ts < arm_totals.minute + 60 "
        "AND r.status >= 400 AND r.status < 500) "
        "WHERE writer = (SELECT MIN(a.writer) FROM arm_totals a "
        "WHERE a.experiment = arm_totals.experiment AND a.arm = arm_totals.arm "
        "AND a.minute = arm_totals.minute)"))


def _v13_merged_answers_index(op: Operations) -> None:
    """The merged answers (those that keep a ``detail``) by experiment, status and time: an
    interleaving report read its newest 50,000 by sorting every row of the experiment (1.9 s
    at a million requests), and the feedback of every one of them."""
    op.create_index("ix_requests_merged", "requests", ["experiment", "status", "ts"],
                    sqlite_where=sa.text("detail IS NOT NULL"),
                    postgresql_where=sa.text("detail IS NOT NULL"))


STEPS: list[Callable[[Operations], None]] = [
    _v1_initial,
    _v2_request_batch_size,
    _v3_feedback_and_rollups,
    _v4_experiments,
    _v5_leaner_request_indexes,
    _v6_strategies_and_controller,
    _v7_rollups_per_writer,
    _v8_version_status_and_origin,
    _v9_feedback_attribution,
    _v10_tokens_and_audit_log,
    _v11_arm_totals_and_units,
    _v12_arm_rejected,
    _v13_merged_answers_index,
]

LATEST = len(STEPS)


class SchemaTooNew(RuntimeError):
    pass


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("meta"):
        return 0
    row = conn.execute(
        sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    return int(row[0]) if row else 0


def migrate(engine: sa.Engine) -> tuple[int, int]:
    """Bring the store to the latest schema. Returns (version before, version after)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One migrator at a time when several servers start together.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7314159)"))
        before = current_version(conn)
        if before > LATEST:
            raise SchemaTooNew(
                f"this store has schema version {before}, but this release of champion "
                f"knows only up to {LATEST}; upgrade champion to open it"
            )
        if before == LATEST:
            return before, LATEST
        if before == 0 and not sa.inspect(conn).get_table_names():
            # An empty database: create the latest schema in one go (the steps below give
            # the same tables, columns and indexes — tests/unit/test_store.py checks it), which
            # spares a first start importing alembic and replaying every step.
            schema.metadata.create_all(conn)
            conn.execute(sa.insert(schema.meta).values(key="schema_version", value=str(LATEST)))
            return before, LATEST
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        ops = Operations(MigrationContext.configure(conn))
        for step in STEPS[before:]:
            step(ops)
        if before != LATEST:
            values = {"key": "schema_version", "value": str(LATEST)}
            if before == 0:
                conn.execute(sa.insert(schema.meta).values(**values))
            else:
                conn.execute(
                    sa.update(schema.meta)
                    .where(schema.meta.c.key == "schema_version")
                    .values(value=str(LATEST))
                )
    return before, LATEST
