"""Consumers, meetings and the append-only audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
CREATE FUNCTION meetgate_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION meetgate_audit_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "consumers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("organizers", sa.JSON, nullable=False),
        sa.Column("organizers_from_policy", sa.Boolean, nullable=False),
        sa.Column("rate_per_minute", sa.Integer, nullable=True),
        sa.Column("daily_quota", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "meetings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("consumer_id", sa.String(36), sa.ForeignKey("consumers.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("organizer", sa.String(320), nullable=False),
        sa.Column("external_id", sa.String(80), nullable=False),
        sa.Column("graph_meeting_id", sa.Text, nullable=True),
        sa.Column("join_url", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("consumer_id", "idempotency_key", name="uq_meetings_consumer_key"),
    )
    op.create_index("ix_meetings_consumer_join_url", "meetings", ["consumer_id", "join_url"])
    op.create_table(
        "audit_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("consumer_id", sa.String(36), nullable=True),
        sa.Column("consumer_name", sa.String(100), nullable=True),
        sa.Column("organizer", sa.String(320), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("meeting_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(60), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("graph_status", sa.Integer, nullable=True),
        sa.Column("graph_request_id", sa.String(64), nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_consumer_at", "audit_log", ["consumer_id", "at"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    elif dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS meetgate_audit_append_only()")
    op.drop_table("audit_log")
    op.drop_table("meetings")
    op.drop_table("consumers")
