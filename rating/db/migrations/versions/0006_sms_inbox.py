"""SMS replies kept as a queue: the sender (encrypted) and the number written to

Revision ID: 0006_sms_inbox
Revises: 0003_sms
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sms_inbox"
down_revision = "0003_sms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The webhook stores a reply and answers Twilio; handling follows from the stored row, so
    # a process that dies in between leaves what another needs to finish it. Nullable: rows
    # from before this revision were handled whole by their webhook.
    with op.batch_alter_table("sms_inbound") as batch:
        batch.add_column(sa.Column("phone_enc", sa.Text(), nullable=True))
        batch.add_column(sa.Column("to_number", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_sms_inbound_unhandled",
        "sms_inbound",
        ["claimed_at"],
        postgresql_where=sa.text("handled_at IS NULL"),
        sqlite_where=sa.text("handled_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sms_inbound_unhandled", table_name="sms_inbound")
    with op.batch_alter_table("sms_inbound") as batch:
        batch.drop_column("to_number")
        batch.drop_column("phone_enc")
