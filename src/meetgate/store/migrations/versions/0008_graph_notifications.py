"""Graph change notifications received by the gateway: its subscriptions and the raw notifications.

Revision ID: 0008
Revises: 0007 (webhooks)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "graph_subscriptions",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(120), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("client_state_enc", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "graph_notifications",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(12), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(300), nullable=True),
    )
    op.create_index("ix_graph_notifications_pending", "graph_notifications", ["processed_at", "seq"])
    op.create_table(
        "graph_polls",
        sa.Column("meeting_id", sa.String(40), sa.ForeignKey("meetings.id"), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("graph_polls")
    op.drop_index("ix_graph_notifications_pending", table_name="graph_notifications")
    op.drop_table("graph_notifications")
    op.drop_table("graph_subscriptions")
