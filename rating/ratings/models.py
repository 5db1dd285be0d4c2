"""The invitation to rate again (追评) after a ticket closed.

A rating attempt itself is a row of its evaluation (rating/cases/models.py: one aggregate,
bound by relationships)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
)
from sqlalchemy.orm import Mapped, mapped_column

from rating.db.base import Base, UtcDateTime, utcnow


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
