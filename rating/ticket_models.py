"""Tables of the ticket workflow and of the scheduler's bookkeeping (migration 0004_bridge).

Ticket history, extensions (延期), console alerts, agency contacts, sweep claims (leases that
let several processes share one sweep), second-rating invitations (追评) and the nightly
statistics rollup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rating.models import Base, UtcDateTime, utcnow


class TicketEvent(Base):
    """One step in a ticket's history: a transition, an extension request or decision."""

    __tablename__ = "ticket_events"
    __table_args__ = (UniqueConstraint("ticket_id", "event_ref", name="uq_ticket_events_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # An external system's event id (12345 retries its callbacks): the same id is applied once.
    event_ref: Mapped[str | None] = mapped_column(String(128))


class TicketExtension(Base):
    """An agency's request for more time on one deadline, and the bureau's decision."""

    __tablename__ = "ticket_extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    deadline: Mapped[str] = mapped_column(String(32))
    previous_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    requested_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="requested")  # granted | refused
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """A console alert (deadline before / at / after, dead letter) and what its SMS did."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(24))  # deadline | dead_letter
    phase: Mapped[str | None] = mapped_column(String(8))  # before | at | after
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    ticket_no: Mapped[str | None] = mapped_column(String(32))
    agency: Mapped[str | None] = mapped_column(String(128))
    deadline: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    message: Mapped[str] = mapped_column(Text)
    sms_status: Mapped[str] = mapped_column(String(16), default="none")  # sent|failed|skipped
    sms_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class AgencyContact(Base):
    """Who at an agency gets deadline alerts by SMS; the number is encrypted like citizens'."""

    __tablename__ = "agency_contacts"

    agency: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_masked: Mapped[str] = mapped_column(String(24))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SweepClaim(Base):
    """A lease on one item of one sweep: the process holding it works the item, others skip it.

    Rows of other tables (evaluations) are claimed here when the work runs in a transaction
    of its own (RatingService.rate), so a row lock could not be held across it.
    """

    __tablename__ = "sweep_claims"

    sweep: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_until: Mapped[datetime] = mapped_column(UtcDateTime)


class SecondRatingInvite(Base):
    """An intent to invite the citizen to rate again (追评) after a ticket closed.

    The SMS part sends it (`SecondRatings.due_invitations`); the reply is stored as a rating
    with attempt = 2 and posted as 评价次数 2.
    """

    __tablename__ = "second_rating_invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rating_id: Mapped[int | None] = mapped_column(ForeignKey("ratings.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_second_rating_due", "sent_at", "due_at"),)


class StatsDaily(Base):
    """The nightly rollup: one row per local day, grouping, group key and level."""

    __tablename__ = "stats_daily"
    __table_args__ = (
        UniqueConstraint("day", "group_by", "group_key", "level", name="uq_stats_daily_cell"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # local YYYY-MM-DD
    group_by: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str] = mapped_column(String(128))
    level: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    score_sum: Mapped[float] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
