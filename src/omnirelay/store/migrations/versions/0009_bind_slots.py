"""smpp_connectors.binds, bind_slots: a connector's binds are the cluster's total

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:10:00.000000

A node binds a connector only while it holds one of its slots, leased in the database's time
(docs/architecture.md#smpp-binds).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("smpp_connectors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("binds", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "bind_slots",
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("connector", "slot", name=op.f("pk_bind_slots")),
    )


def downgrade() -> None:
    op.drop_table("bind_slots")
    with op.batch_alter_table("smpp_connectors", schema=None) as batch_op:
        batch_op.drop_column("binds")
