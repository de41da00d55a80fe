"""channel_refs.sent_at and receipts_inbox.sent_after: SMSC message ids that repeat

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 16:00:00.000000

SMSCs number messages with counters that start again at 1 when they restart, so one connector
hands out the same ref to several sends over time. A ref recorded again now names the newer send
(the row is updated, no longer a second insert refused by the key), and `sent_at` says when that
send was recorded. A receipt whose connector knows when it submitted the message that got the id
carries that time (`sent_after`): a ref row recorded before it is an earlier send's, which the
receipt is not for. Both nullable: rows from before this revision have neither.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_refs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("receipts_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_after", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("receipts_inbox", schema=None) as batch_op:
        batch_op.drop_column("sent_after")
    with op.batch_alter_table("channel_refs", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
