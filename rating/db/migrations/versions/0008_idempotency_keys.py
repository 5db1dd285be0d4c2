"""Idempotency keys with a hash of the request each stands for

Revision ID: 0008_idempotency_keys
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_idempotency_keys"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys sent before this revision live on only in ratings.source_ref (per evaluation); a
    # retry of such a request still replays there, so nothing needs backfilling.
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("route", sa.String(length=128), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
