"""messages.scenario_key: the funnel per scenario

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:00:00.000000

An OMNI message now remembers the scenario it went through, so the funnel of each scenario and
step (`GET /omni/1/analytics`, docs/api.md#analytics) is read from the stored attempts, on any
node and after a restart. Nullable: messages from before this revision, and Messenger single
sends, have no scenario.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scenario_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("scenario_key")
