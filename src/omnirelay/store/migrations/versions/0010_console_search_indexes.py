"""console search indexes: messages newest first across accounts, and by destination

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:00:00.000000

The console (docs/console.md#search-and-indexes) lists messages newest first with keyset
pagination. An account's list walks `ix_messages_account_created`; the operator's, across every
account, walks `ix_messages_created`; a search by destination seeks `ix_messages_account_to`
(the operator's once per account).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_account_bulk")
        batch_op.create_index(
            "ix_messages_account_bulk", ["account_id", "bulk_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_messages_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_messages_account_to", ["account_id", "sent_to", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_account_to")
        batch_op.drop_index("ix_messages_created")
        batch_op.drop_index("ix_messages_account_bulk")
        batch_op.create_index("ix_messages_account_bulk", ["account_id", "bulk_id"], unique=False)
