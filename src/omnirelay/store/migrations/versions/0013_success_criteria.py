"""receipts_inbox.seen, attempts.delivered_at and attempts.seen_at: per-step success criteria

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:00:00.000000

A scenario step may ask to be seen, not only delivered (docs/api.md#success-criteria). A receipt
now says whether it is a read (`seen`; receipts stored before are not). An attempt records when a
delivery short of its criterion came (`delivered_at`: progress, the step kept waiting) and when a
read came (`seen_at`), on time or late. All three are new facts: rows from before have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipts_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seen", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("seen_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("seen_at")
        batch_op.drop_column("delivered_at")
    with op.batch_alter_table("receipts_inbox", schema=None) as batch_op:
        batch_op.drop_column("seen")
