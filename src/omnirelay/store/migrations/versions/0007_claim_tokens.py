"""messages.claims, reports.push_token, forwards.lease_token: claims with fencing tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 16:00:00.000000

Every claim of an outbox row now takes a fresh token that the write of its outcome must present
(docs/architecture.md, "Claims and leases"). Messages use their `version` as the token and count
their claims since the last written outcome in `claims`, so a message that keeps failing after its
send is parked instead of being sent again every lease. Pushes and forwards get a token and a
lease expiry in database time, as messages have in `lease_expires_at`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claims", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_token", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("push_lease_until", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_until", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_token")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("push_lease_until")
        batch_op.drop_column("push_token")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("claims")
