"""The tables: cases, evaluations, ratings, tickets, the outbox, the audit log and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps stored in UTC; SQLite gives them back aware too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Case(Base):
    """A 12345 case (service record): what a citizen is asked to rate."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_no: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str | None] = mapped_column(String(24))
    agency: Mapped[str | None] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    matter: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16), default="api")
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    evaluation: Mapped[Evaluation] = relationship(back_populates="case", uselist=False)


class Evaluation(Base):
    """One per case: its state and the due times the scheduler sweeps."""

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_pending_default", "status", "default_due_at"),
        Index("ix_evaluations_pending_reminder", "status", "reminder_due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    profile: Mapped[str] = mapped_column(String(64))
    default_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reminder_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    adopted_rating_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    case: Mapped[Case] = relationship(back_populates="evaluation")
    ratings: Mapped[list[Rating]] = relationship(
        back_populates="evaluation", order_by="Rating.id", lazy="selectin"
    )


class Rating(Base):
    """Every rating attempt; at most one per evaluation is adopted (the first real one)."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("evaluation_id", "source_ref", name="uq_ratings_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column()
    channel: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text)
    voice_ref: Mapped[str | None] = mapped_column(String(512))
    source_ref: Mapped[str | None] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    rated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    evaluation: Mapped[Evaluation] = relationship(back_populates="ratings")


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
    # Workflow columns (migration 0004_bridge; rules in rating/tickets.py).
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


class OutboxItem(Base):
    """A message to a downstream system, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(32))
    ordering_key: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    """Who did what to which record, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApiToken(Base):
    """A bearer token for the API; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Role agency only: the agency whose tickets the token sees (migration 0005_agency_tokens).
    agency: Mapped[str | None] = mapped_column(String(128))


import rating.ivr_models  # noqa: E402  (registers the IVR part's outbound calls table)
import rating.sms_models  # noqa: E402  (registers the SMS tables on Base)
import rating.ticket_models  # noqa: E402,F401  (registers the ticket workflow tables)
