"""Calendar-backed meetings: a meeting's placement and Graph event id; a consumer's default placement.

Revision ID: 0006
Revises: 0005 (key expiry and retired keys)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every meeting made before is a standalone onlineMeeting; consumers keep standalone by default
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("placement", sa.String(16), nullable=False, server_default="standalone"))
        batch.add_column(sa.Column("graph_event_id", sa.Text, nullable=True))
    with op.batch_alter_table("consumers") as batch:
        batch.add_column(sa.Column("default_placement", sa.String(16), nullable=True))


def _drop(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place; a batch copy of ``consumers`` would be refused by the
        # foreign keys that point at it
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    _drop("consumers", "default_placement")
    _drop("meetings", "graph_event_id")
    _drop("meetings", "placement")
