"""API tokens: when each was last used (api_tokens.last_used_at)

Revision ID: 0010_token_last_used
Revises: 0005_agency_tokens
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_token_last_used"
down_revision = "0005_agency_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a token not used since this revision shows "never" until its next use.
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
