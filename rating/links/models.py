"""The rating-link table: one token per evaluation, single use, expiring with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from rating.db.base import Base, UtcDateTime


class RatingLink(Base):
    """The token of a rating link /r/{token}: one per evaluation, single use."""

    __tablename__ = "rating_links"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
