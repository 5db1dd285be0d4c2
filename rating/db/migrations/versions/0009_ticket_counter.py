"""Ticket numbers from a counter row taken in the ticket's own transaction

Revision ID: 0009_ticket_counter
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_ticket_counter"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = op.create_table(
        "ticket_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ticket_counters")),
    )
    # Tickets numbered before this revision carry their rating's id as serial: start past the
    # highest, so no new number (date + serial) can equal an old one.
    highest = op.get_bind().execute(sa.text("SELECT MAX(rating_id) FROM tickets")).scalar()
    op.bulk_insert(counters, [{"name": "tickets", "value": int(highest or 0)}])


def downgrade() -> None:
    # The older code numbers from rating ids again: numbers stay unique, gaps come back.
    op.drop_table("ticket_counters")
