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
)
sa.Index("ix_requests_deployment_ts", requests.c.deployment, requests.c.ts)
sa.Index("ix_requests_ts", requests.c.ts)
