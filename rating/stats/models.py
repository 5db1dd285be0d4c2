"""The nightly statistics rollup."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rating.db.base import Base, UtcDateTime, utcnow


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


class PublishedMonth(Base):
    """One agency's results for one local month, chosen by the bureau for the public page
    (Sanmenxia Art. 16, Taishan Art. 23: 向社会公布 / 向社会发布)."""

    __tablename__ = "published_results"
    __table_args__ = (UniqueConstraint("agency", "month", name="uq_published_results_cell"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency: Mapped[str] = mapped_column(String(128))
    month: Mapped[str] = mapped_column(String(7), index=True)  # local YYYY-MM
    published_by: Mapped[str] = mapped_column(String(160))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
