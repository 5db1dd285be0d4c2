"""IVR: outbound calls (AMI Originate of rating surveys and agents' call-backs)

Revision ID: 0002_ivr
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ivr"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("agent_extension", sa.String(length=16), nullable=True),
        sa.Column("channel_uniqueid", sa.String(length=64), nullable=True),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_calls_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("action_id", name=op.f("uq_calls_action_id")),
    )
    op.create_index(op.f("ix_calls_case_id"), "calls", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_case_id"), table_name="calls")
    op.drop_table("calls")
