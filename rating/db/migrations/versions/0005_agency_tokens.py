"""Agency-scoped API tokens: api_tokens.agency

Revision ID: 0005_agency_tokens
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_agency_tokens"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: tokens of the other roles name no agency; agency tokens made before this
    # revision have none either and are refused on the ticket routes until replaced.
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("agency", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("agency")
