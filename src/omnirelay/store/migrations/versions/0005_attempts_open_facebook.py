"""attempts: Messenger sends waiting for their delivery, by recipient

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 21:00:00.000000

A Messenger read event, and a delivery event without `mids`, carry a watermark only: every message
sent to that person up to it is delivered. `waiting_refs` found them with `attempts.sender = ? AND
attempts.to IN (…)` and no index on either, so each such event read the whole attempts table, which
holds every step of every message until retention. The partial index holds the Messenger attempts
still open (`done_at IS NULL`: sent, not yet delivered or failed), by recipient and Page: a few rows
per person, and nothing for SMS attempts, whose writes it does not touch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OPEN_FACEBOOK = sa.text("channel = 'FACEBOOK' AND done_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attempts_open_facebook",
            ["to", "sender"],
            unique=False,
            sqlite_where=_OPEN_FACEBOOK,
            postgresql_where=_OPEN_FACEBOOK,
        )


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_open_facebook")
