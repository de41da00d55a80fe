"""page_throttles: Meta's throttling of a Page, told to every node

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:40:00.000000

A node that Meta throttles for a Page writes until when (database time); the other nodes read it
within a heartbeat and hold their sends to that Page too (docs/architecture.md#cluster-wide-budgets).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_throttles",
        sa.Column("page_id", sa.String(64), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("page_id", name=op.f("pk_page_throttles")),
    )


def downgrade() -> None:
    op.drop_table("page_throttles")
