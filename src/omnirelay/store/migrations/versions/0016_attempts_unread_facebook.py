"""attempts: Messenger sends that expired unread, by recipient: what a late read watermark covers

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 23:30:00.000000

A Messenger read names no message, only a watermark: everything sent to that person up to it was
read. A read after the step failed over (it expired) is a late success, and finding those steps
by recipient needs an index. The partial index holds only the Messenger attempts that expired and
were not read since: a row enters when a step expires (a failover, already a write of that row)
and leaves when its read is recorded. Sends, deliveries and SMS attempts do not touch it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# 15 is EXPIRED_EXPIRED (omnirelay.domain.statuses): what an expired step is written with
_UNREAD_FACEBOOK = sa.text("channel = 'FACEBOOK' AND status_id = 15 AND seen_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attempts_unread_facebook",
            ["to", "sender"],
            unique=False,
            sqlite_where=_UNREAD_FACEBOOK,
            postgresql_where=_UNREAD_FACEBOOK,
        )


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_unread_facebook")
