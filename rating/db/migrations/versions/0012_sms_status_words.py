"""SMS: stored delivery statuses in pingjia's own words, not Twilio's

Revision ID: 0012_sms_status_words
Revises: 0006_sms_inbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_sms_status_words"
down_revision = "0006_sms_inbox"
branch_labels = None
depends_on = None

# Twilio's words that rows may hold (a send's first status, or a receipt that moved a row
# forward under the old ranking), in ours: queued < sent < delivered | failed | undelivered.
# `pending` and `sending` are our own stages before the provider has the message, kept.
OURS = {
    "accepted": "queued",
    "scheduled": "queued",
    "read": "delivered",
    "canceled": "failed",
}


def upgrade() -> None:
    messages = sa.table("sms_messages", sa.column("status", sa.String(16)))
    for theirs, ours in OURS.items():
        op.execute(
            messages.update().where(messages.c.status == theirs).values(status=ours)
        )


def downgrade() -> None:
    # Our words are also what the older code stores; which Twilio word a row had is gone.
    pass
