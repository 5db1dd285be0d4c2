"""Public results: which agency's month the bureau published (published_results)

Revision ID: 0008_published_results
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_published_results"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # A branch of its own off 0001: it reads the stats tables and touches no other part's.
    op.create_table(
        "published_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency", sa.String(length=128), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("published_by", sa.String(length=160), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.UniqueConstraint("agency", "month", name="uq_published_results_cell"),
    )
    op.create_index("ix_published_results_month", "published_results", ["month"])


def downgrade() -> None:
    op.drop_index("ix_published_results_month", table_name="published_results")
    op.drop_table("published_results")
