"""receipts_inbox.lease_token, lease_until: the receipt inbox is claimed like the other outboxes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:00:00.000000

Every node read the whole inbox and worked on the same receipts; now a node claims a batch with
a fencing token and a lease in database time (docs/architecture.md#claims-and-leases).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipts_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_until", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("receipts_inbox", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_token")
