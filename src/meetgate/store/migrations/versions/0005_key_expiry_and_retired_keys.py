"""Consumers' keys: an optional expiry, and the keys rotation replaced (so their 401 can say so).

Revision ID: 0005
Revises: 0004 (meeting revision)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing keys never expire, as before
    with op.batch_alter_table("consumers") as batch:
        batch.add_column(sa.Column("key_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "retired_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("consumer_id", sa.String(36), sa.ForeignKey("consumers.id"), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retired_keys")
    with op.batch_alter_table("consumers") as batch:
        batch.drop_column("key_expires_at")
