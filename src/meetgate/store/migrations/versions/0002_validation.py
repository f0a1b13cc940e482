"""Validation runs, the test-meeting cleanup journal and go-live events (runbook steps 6 and 8).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validation_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("covers_policy_tests", sa.Boolean, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
    )
    op.create_index("ix_validation_runs_client_started", "validation_runs", ["client_id", "started_at"])
    op.create_table(
        "validation_pending",
        sa.Column("organizer_id", sa.String(64), primary_key=True),
        sa.Column("external_id", sa.String(80), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("meeting_id", sa.Text, nullable=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "golive_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("hypercare_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("golive_events")
    op.drop_table("validation_pending")
    op.drop_index("ix_validation_runs_client_started", table_name="validation_runs")
    op.drop_table("validation_runs")
