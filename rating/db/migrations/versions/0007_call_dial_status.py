"""Calls: the citizen leg's dial result of a call-back (Dial()'s DIALSTATUS)

Revision ID: 0007_call_dial_status
Revises: 0002_ivr
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_call_dial_status"
down_revision = "0002_ivr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A call-back's `answered` is the agent's phone; whether the citizen was reached comes
    # later from the dialplan (UserEvent PingjiaCallback). Nullable: older rows never knew.
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("dial_status", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("dial_status")
