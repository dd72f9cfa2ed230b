"""The store's tables, in SQLAlchemy Core. Changes to them go through migrations.py."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("next_version", sa.Integer, nullable=False, server_default="1"),
)

versions = sa.Table(
    "versions",
    metadata,
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
    # ready | building | failed: a version in its own environment serves once it is built.
    sa.Column("status", sa.String(16), nullable=False, server_default="ready"),
    sa.Column("status_message", sa.Text, nullable=False, server_default=""),
    sa.Column("environment", sa.JSON, nullable=True),  # its own environment, if any
    sa.Column("origin", sa.JSON, nullable=True),  # e.g. a git folder: commit, dirty, path
    sa.UniqueConstraint("deployment_id", "number", name="uq_versions_deployment_number"),
)

aliases = sa.Table(
    "aliases",
    metadata,
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

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False, server_default=""),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False, server_default=""),
    sa.Column("detail", sa.JSON, nullable=False),
)
sa.Index("ix_audit_deployment_ts", audit.c.deployment, audit.c.ts)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("target", sa.String(64), nullable=False, server_default=""),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False, server_default="1"),
    sa.Column("unit", sa.String(256), nullable=True),
    sa.Column("experiment", sa.String(64), nullable=True),
    sa.Column("variant", sa.String(160), nullable=True),
    sa.Column("input", sa.Text, nullable=True),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("arm", sa.String(64), nullable=True),
    # what a strategy keeps of a merged answer (JSON), e.g. the teams of an interleaved list
    sa.Column("detail", sa.Text, nullable=True),
)
sa.Index("ix_requests_experiment_arm", requests.c.experiment, requests.c.arm, requests.c.ts,
         sqlite_where=requests.c.experiment.is_not(None),
         postgresql_where=requests.c.experiment.is_not(None))
sa.Index("ix_requests_deployment_ts", requests.c.deployment, requests.c.ts)
# the merged answers (interleaving's), newest first: a report reads the newest 50,000 of them
sa.Index("ix_requests_merged", requests.c.experiment, requests.c.status, requests.c.ts,
         sqlite_where=requests.c.detail.is_not(None),
         postgresql_where=requests.c.detail.is_not(None))

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("unit", sa.String(256), nullable=True),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    # request id (or unit + event id): with metric, what makes a retried feedback a duplicate
    sa.Column("dedup", sa.String(320), nullable=True),
    # what served the request, as its signed id carries it (events/ids.py): feedback is
    # credited from these, not by joining the request log (whose row may be lost)
    sa.Column("experiment", sa.String(32), nullable=True),
    sa.Column("arm", sa.String(64), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("served_at", sa.Float, nullable=True),
    sa.UniqueConstraint("deployment", "dedup", "metric", name="uq_feedback_dedup"),
)
sa.Index("ix_feedback_deployment_ts", feedback.c.deployment, feedback.c.ts)
sa.Index("ix_feedback_request_id", feedback.c.request_id)
sa.Index("ix_feedback_unit", feedback.c.deployment, feedback.c.unit)
sa.Index("ix_feedback_experiment", feedback.c.experiment, feedback.c.metric,
         feedback.c.served_at, sqlite_where=feedback.c.experiment.is_not(None),
         postgresql_where=feedback.c.experiment.is_not(None))

# Rollups are kept per writer (one per server process): two replicas never update the same
# row, so the request log's writers never wait on each other; readers sum over writers.
rollup_minutes = sa.Table(
    "rollup_minutes",
    metadata,
    sa.Column("deployment", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("minute", sa.Integer, primary_key=True),
    sa.Column("writer", sa.String(16), primary_key=True, server_default=""),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
)

rollup_latency = sa.Table(
    "rollup_latency",
    metadata,
    sa.Column("deployment", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("minute", sa.Integer, primary_key=True),
    sa.Column("bin", sa.Integer, primary_key=True),
    sa.Column("writer", sa.String(16), primary_key=True, server_default=""),
    sa.Column("count", sa.Integer, nullable=False),
)


experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, server_default=""),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("strategy", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    # the endpoint while running or paused, else NULL: at most one active per endpoint
    sa.Column("active_endpoint", sa.String(128), nullable=True, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("stopped_at", sa.Float, nullable=True),
    sa.Column("decision", sa.JSON, nullable=True),
    # bumped on every change of ``state``: processes reload an experiment's hot state when
    # it moves, without reloading the registry
    sa.Column("state_version", sa.Integer, nullable=False, server_default="0"),
)
sa.Index("ix_experiments_endpoint", experiments.c.endpoint)

experiment_snapshots = sa.Table(
    "experiment_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.String(32), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("point", sa.JSON, nullable=False),
)
sa.Index("ix_experiment_snapshots_experiment_ts", experiment_snapshots.c.experiment_id,
         experiment_snapshots.c.ts)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False, server_default=""),
    sa.Column("epoch", sa.Integer, nullable=False, server_default="0"),
    # seconds since the epoch on the store's own clock (server-side now())
    sa.Column("expires_at", sa.Float, nullable=False, server_default="0"),
)

experiment_events = sa.Table(
    "experiment_events",
    metadata,
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
sa.Index("ix_experiment_events_experiment", experiment_events.c.experiment_id)

shadow_events = sa.Table(
    "shadow_events",
    metadata,
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
sa.Index("ix_shadow_events_experiment_ts", shadow_events.c.experiment, shadow_events.c.ts)

rollup_arms = sa.Table(
    "rollup_arms",
    metadata,
    sa.Column("experiment", sa.String(32), primary_key=True),
    sa.Column("arm", sa.String(64), primary_key=True),
    sa.Column("minute", sa.Integer, primary_key=True),
    sa.Column("bin", sa.Integer, primary_key=True),
    sa.Column("writer", sa.String(16), primary_key=True, server_default=""),
    sa.Column("count", sa.Integer, nullable=False),
)

# Per experiment and arm, what its report's exposure needs without reading the log: the
# requests, server errors (5xx), refused requests (4xx) and latency sum per minute and
# writer (``anonymous``: requests without a unit, each its own), and every named unit with
# the minute of its newest request (retention drops both by minute, as it drops the log's
# rows).
arm_totals = sa.Table(
    "arm_totals",
    metadata,
    sa.Column("experiment", sa.String(32), primary_key=True),
    sa.Column("arm", sa.String(64), primary_key=True),
    sa.Column("minute", sa.Integer, primary_key=True),
    sa.Column("writer", sa.String(16), primary_key=True, server_default=""),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("anonymous", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
)

arm_units = sa.Table(
    "arm_units",
    metadata,
    sa.Column("experiment", sa.String(32), primary_key=True),
    sa.Column("arm", sa.String(64), primary_key=True),
    sa.Column("unit", sa.String(256), primary_key=True),
    sa.Column("minute", sa.Integer, nullable=False),
)

# API tokens besides the admin token: only a hash of each is kept (shown once at creation).
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("rate_limit", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

# Every admin action (a change through /api/ or the dashboard), with the token that made it.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("token", sa.String(128), nullable=False),
    sa.Column("user", sa.String(128), nullable=False, server_default=""),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("deployment", sa.String(128), nullable=True),
)
sa.Index("ix_audit_log_ts", audit_log.c.ts)
