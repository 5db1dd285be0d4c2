"""SMS replies: the extension code (扩展码) a provider gives apart is a column of its own

Revision ID: 0013_sms_reply_extension
Revises: 0012_sms_status_words
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_sms_reply_extension"
down_revision = "0012_sms_status_words"
branch_labels = None
depends_on = None

# How the older code kept an extension given apart from the address (Tencent's `extend`,
# Aliyun's `dest_code`): in `to_number`, as `ext:CODE`.
OLD_FORM = "ext:"


def upgrade() -> None:
    # The reply's extension as the provider gave it, or read from the number it was sent to;
    # the sms_inbox sweep hands it back to the decision with the rest of the row. Nullable:
    # most replies are to the bare number.
    with op.batch_alter_table("sms_inbound") as batch:
        batch.add_column(sa.Column("extension", sa.String(length=32), nullable=True))
    inbound = sa.table(
        "sms_inbound",
        sa.column("to_number", sa.String(64)),
        sa.column("extension", sa.String(32)),
    )
    old = inbound.c.to_number.startswith(OLD_FORM)
    op.execute(
        inbound.update()
        .where(old)
        .values(extension=sa.func.substr(inbound.c.to_number, len(OLD_FORM) + 1), to_number="")
    )


def downgrade() -> None:
    # The older code reads an extension only from the address: write it back in its form
    # where no address was given.
    inbound = sa.table(
        "sms_inbound",
        sa.column("to_number", sa.String(64)),
        sa.column("extension", sa.String(32)),
    )
    apart = inbound.c.extension.is_not(None) & (sa.func.coalesce(inbound.c.to_number, "") == "")
    op.execute(
        inbound.update().where(apart).values(to_number=OLD_FORM + inbound.c.extension)
    )
    # Recreating the table on SQLite would lose the partial index: drop it, put it back.
    op.drop_index("ix_sms_inbound_unhandled", table_name="sms_inbound")
    with op.batch_alter_table("sms_inbound") as batch:
        batch.drop_column("extension")
    op.create_index(
        "ix_sms_inbound_unhandled",
        "sms_inbound",
        ["claimed_at"],
        postgresql_where=sa.text("handled_at IS NULL"),
        sqlite_where=sa.text("handled_at IS NULL"),
    )
