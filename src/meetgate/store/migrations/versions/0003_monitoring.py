"""Monitoring: collected log records and snapshots, collection cursors, alerts (runbook step 7).

Revision ID: 0003
Revises: 0002 (validation runs and go-live events)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_records",
        sa.Column("source", sa.String(20), primary_key=True),
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.String(255), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_monitor_records_scope_at", "monitor_records", ["tenant_id", "app_id", "source", "at"])
    op.create_table(
        "monitor_cursors",
        sa.Column("tenant_id", sa.String(255), primary_key=True),
        sa.Column("app_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(20), primary_key=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(255), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_monitor_alerts_status", "monitor_alerts", ["status", "last_seen"])


def downgrade() -> None:
    op.drop_index("ix_monitor_alerts_status", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_cursors")
    op.drop_index("ix_monitor_records_scope_at", table_name="monitor_records")
    op.drop_table("monitor_records")
