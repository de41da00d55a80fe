"""nodes: cluster membership with heartbeats in database time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:00:00.000000

Every gateway process registers itself and beats every few seconds; a node is live while its
heartbeat is fresh by the database's clock (docs/architecture.md#cluster-membership).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("stopped_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_nodes")),
    )


def downgrade() -> None:
    op.drop_table("nodes")
