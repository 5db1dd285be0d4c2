"""Outbox: Idempotency-Keys unique across installations (a UUID4 per row, not the row id)

Revision ID: 0011_outbox_global_keys
Revises: 0001

outbox.idempotency_key already holds each row's key (String(64), unique); what changes is how
it is made (rating/outbox/central.py new_key). Rows not tried yet get a new key here, so no
two installations can send the same one. Rows already tried keep theirs: the store may have
stored them under it, and a new key would make it store them twice.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0011_outbox_global_keys"
down_revision = "0001"
branch_labels = None
depends_on = None

KINDS = {"central.rating": "rating", "central.rating.update": "rating-update"}


def upgrade() -> None:
    bind = op.get_bind()
    untried = bind.execute(
        sa.text("SELECT id, topic FROM outbox WHERE attempts = 0 AND sent_at IS NULL")
    ).all()
    for row_id, topic in untried:
        key = f"{KINDS.get(topic, 'ticket' if topic == 'central.ticket' else 'outbox')}-{uuid.uuid4()}"
        bind.execute(
            sa.text("UPDATE outbox SET idempotency_key = :key WHERE id = :id"),
            {"key": key, "id": row_id},
        )


def downgrade() -> None:
    # Nothing to undo: a UUID key is as good to the older code, which only sends it.
    pass
