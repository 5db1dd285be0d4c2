"""Tables of the ticket workflow: the bad-review ticket (差评工单), its history, extensions
(延期), console alerts, the agency contacts that get them by SMS, and the invitation to rate
again (追评) that closing a ticket leaves behind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rating.cases.models import Case
from rating.db.base import Base, UtcDateTime, utcnow


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


class Ticket(Base):
    """A bad-review ticket (差评工单), born in the transaction of the rating that opened it."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    level: Mapped[int] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text)
    voice_ref: Mapped[str | None] = mapped_column(String(512))
    agency: Mapped[str | None] = mapped_column(String(128))
    phone_masked: Mapped[str | None] = mapped_column(String(24))
    deadlines: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Workflow columns (migration 0004_bridge; rules in rating/tickets/service.py).
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)  # in force now
    next_alert_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))  # confirmed | not_adopted
    feedback: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_on_time: Mapped[bool | None] = mapped_column(Boolean)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    transfer_next_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    transfer_attempts: Mapped[int] = mapped_column(Integer, default=0)
    transferred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    transfer_ref: Mapped[str | None] = mapped_column(String(128))

    case: Mapped[Case] = relationship()


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


class TicketCounter(Base):
    """The serial of the last ticket numbered: taken in the transaction that inserts the ticket
    (rating/tickets/numbering.py), so a refused or rolled-back rating uses up no number."""

    __tablename__ = "ticket_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
