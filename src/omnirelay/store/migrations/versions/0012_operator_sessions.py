"""operator_sessions: the operator's console sessions, shared by every node

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:45:00.000000

They were kept in the memory of the node that opened them: behind a load balancer, or with
`serve --workers N`, the operator's next page went to another node and found no session
(docs/console.md#sign-in-and-sessions).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_sessions",
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_operator_sessions")),
    )


def downgrade() -> None:
    op.drop_table("operator_sessions")
