"""Meetings: a revision raised by every change the gateway makes (the invitation's SEQUENCE).

Revision ID: 0004
Revises: 0003 (monitoring)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing meetings start at 0: their invitations were sent without SEQUENCE, which means 0
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("revision", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("revision")
