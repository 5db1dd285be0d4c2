"""A 12345 case, its evaluation and the evaluation's rating attempts: one aggregate, bound by
relationships (what a citizen is asked to rate, its state, and every rating given)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rating.db.base import Base, UtcDateTime, utcnow


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
