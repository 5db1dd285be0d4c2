"""Leases that let several processes share one sweep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from rating.db.base import Base, UtcDateTime


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
