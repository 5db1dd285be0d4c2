"""Ticket workflow, alerts, sweep claims, second ratings, statistics rollup

Revision ID: 0004_bridge
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_bridge"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _ticket_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("due_at", TS, nullable=True),
        sa.Column("next_alert_at", TS, nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.Column("verified_at", TS, nullable=True),
        sa.Column("verified_on_time", sa.Boolean(), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=True),
        sa.Column("transfer_next_at", TS, nullable=True),
        sa.Column("transfer_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("transferred_at", TS, nullable=True),
        sa.Column("transfer_ref", sa.String(length=128), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for column in _ticket_columns():
            batch_op.add_column(column)
        batch_op.create_index("ix_tickets_due_at", ["due_at"], unique=False)
        batch_op.create_index("ix_tickets_next_alert_at", ["next_alert_at"], unique=False)
        batch_op.create_index("ix_tickets_transfer_next_at", ["transfer_next_at"], unique=False)

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("event_ref", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
        sa.UniqueConstraint("ticket_id", "event_ref", name="uq_ticket_events_ref"),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])

    op.create_table(
        "ticket_extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.String(length=32), nullable=False),
        sa.Column("previous_due_at", TS, nullable=False),
        sa.Column("requested_due_at", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_extensions_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_extensions")),
    )
    op.create_index("ix_ticket_extensions_ticket_id", "ticket_extensions", ["ticket_id"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("ticket_no", sa.String(length=32), nullable=True),
        sa.Column("agency", sa.String(length=128), nullable=True),
        sa.Column("deadline", sa.String(length=32), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sms_status", sa.String(length=16), nullable=False),
        sa.Column("sms_detail", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_alerts_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    op.create_index("ix_alerts_ticket_id", "alerts", ["ticket_id"])
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])

    op.create_table(
        "agency_contacts",
        sa.Column("agency", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("phone_masked", sa.String(length=24), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("agency", name=op.f("pk_agency_contacts")),
    )

    op.create_table(
        "sweep_claims",
        sa.Column("sweep", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimed_until", TS, nullable=False),
        sa.PrimaryKeyConstraint("sweep", "item_id", name=op.f("pk_sweep_claims")),
    )

    op.create_table(
        "second_rating_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("rating_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_second_rating_invites_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_second_rating_invites_evaluation_id_evaluations"),
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"], ["ratings.id"], name=op.f("fk_second_rating_invites_rating_id_ratings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_rating_invites")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_second_rating_invites_ticket_id")),
    )
    op.create_index(
        "ix_second_rating_invites_evaluation_id", "second_rating_invites", ["evaluation_id"]
    )
    op.create_index("ix_second_rating_due", "second_rating_invites", ["sent_at", "due_at"])

    op.create_table(
        "stats_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("group_by", sa.String(length=16), nullable=False),
        sa.Column("group_key", sa.String(length=128), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_daily")),
        sa.UniqueConstraint("day", "group_by", "group_key", "level", name="uq_stats_daily_cell"),
    )
    op.create_index("ix_stats_daily_day", "stats_daily", ["day"])


def downgrade() -> None:
    for table in (
        "stats_daily",
        "second_rating_invites",
        "sweep_claims",
        "agency_contacts",
        "alerts",
        "ticket_extensions",
        "ticket_events",
    ):
        op.drop_table(table)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_transfer_next_at")
        batch_op.drop_index("ix_tickets_next_alert_at")
        batch_op.drop_index("ix_tickets_due_at")
        for column in reversed(_ticket_columns()):
            batch_op.drop_column(column.name)
