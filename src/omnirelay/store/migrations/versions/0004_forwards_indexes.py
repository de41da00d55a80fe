"""forwards: pending ones by due time, finished ones by age

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 18:40:00.000000

The janitor's purge deletes `forwards WHERE next_try_at IS NULL AND created_at < ?` in the writer's
transaction. Through the `next_try_at` index that walked every finished forward (delivered or given
up), however recent, every round. The plain index is replaced by two disjoint partial ones: pending
forwards by `next_try_at` (the sender's `next_try_at <= ?` implies NOT NULL, so it still serves the
poll, now without the finished rows in it), finished ones by `created_at` (the purge finds just the
old ones).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FINISHED = sa.text("next_try_at IS NULL")
_PENDING = sa.text("next_try_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.drop_index("ix_forwards_next_try_at")
        batch_op.create_index(
            "ix_forwards_pending",
            ["next_try_at"],
            unique=False,
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )
        batch_op.create_index(
            "ix_forwards_done",
            ["created_at"],
            unique=False,
            sqlite_where=_FINISHED,
            postgresql_where=_FINISHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.drop_index("ix_forwards_done")
        batch_op.drop_index("ix_forwards_pending")
        batch_op.create_index("ix_forwards_next_try_at", ["next_try_at"], unique=False)
