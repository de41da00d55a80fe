"""retention indexes: finished messages and reports by age

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 17:05:00.000000

The janitor's purge ran in the writer's transaction with `messages WHERE phase = 'DONE' AND
done_at < ?` and `reports WHERE state = ? AND created_at < ?`: neither had an index, so every
round scanned both tables (which grow with every message) while every write waited.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_DONE = sa.text("done_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_done", ["done_at"], unique=False, sqlite_where=_DONE, postgresql_where=_DONE
        )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index("ix_reports_age", ["state", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_age")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_done")
