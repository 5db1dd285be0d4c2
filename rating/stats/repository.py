"""Statistics queries: ratings per level and ticket outcomes, grouped, over a period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, delete, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from rating.cases.models import Case, Evaluation, Rating
from rating.db.records import SessionRepository
from rating.stats.models import StatsDaily
from rating.tickets.models import Ticket

GROUPS = ("agency", "agent", "channel", "day")


class StatsRepository(SessionRepository):
    def _key(self, group_by: str | None, tz: ZoneInfo, at: datetime) -> ColumnElement[Any]:
        if group_by is None:
            return literal("all")
        if group_by == "agency":
            return func.coalesce(Case.agency, "")
        if group_by == "agent":
            return func.coalesce(Case.agent_id, "")
        if group_by == "channel":
            return Rating.channel.expression
        if self.session.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone(str(tz), Rating.rated_at), "YYYY-MM-DD")
        # SQLite holds UTC text; the zone's offset at the period's start (China has no DST).
        offset = at.astimezone(tz).utcoffset()
        hours = int(offset.total_seconds() // 3600) if offset else 0
        return func.strftime("%Y-%m-%d", Rating.rated_at, f"{hours:+d} hours")

    async def levels(
        self, start: datetime, end: datetime, group_by: str | None, tz: ZoneInfo
    ) -> Sequence[tuple[str, int, int, float]]:
        """(group key, level, count, score sum) of adopted ratings, not-adopted ones left out."""
        key = self._key(group_by, tz, start).label("key")
        query = (
            select(key, Rating.level, func.count(), func.sum(Rating.score))
            .select_from(Rating)
            .join(Evaluation, Evaluation.id == Rating.evaluation_id)
            .join(Case, Case.id == Evaluation.case_id)
            .outerjoin(Ticket, Ticket.rating_id == Rating.id)
            .where(
                Rating.adopted.is_(True),
                Rating.rated_at >= start,
                Rating.rated_at < end,
                or_(Ticket.verdict.is_(None), Ticket.verdict != "not_adopted"),
            )
            .group_by(key, Rating.level)
        )
        rows = (await self.session.execute(query)).all()
        return [(str(r[0]), int(r[1]), int(r[2]), float(r[3] or 0)) for r in rows]

    async def tickets(
        self, start: datetime, end: datetime, group_by: str | None, tz: ZoneInfo
    ) -> Sequence[tuple[str, int, int, int, int]]:
        """(key, tickets, verified on time, rectified, not adopted) of the period's bad ratings."""
        key = self._key(group_by, tz, start).label("key")

        def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
            return func.sum(case((condition, 1), else_=0).cast(Integer))

        query = (
            select(
                key,
                func.count(Ticket.id),
                count_if(Ticket.verified_on_time.is_(True)),
                count_if(and_(Ticket.feedback.is_not(None), Ticket.verdict == "confirmed")),
                count_if(Ticket.verdict == "not_adopted"),
            )
            .select_from(Ticket)
            .join(Rating, Rating.id == Ticket.rating_id)
            .join(Case, Case.id == Ticket.case_id)
            .where(Rating.rated_at >= start, Rating.rated_at < end)
            .group_by(key)
        )
        rows = (await self.session.execute(query)).all()
        return [
            (str(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows
        ]

    async def replace_day(self, day: str, rows: list[StatsDaily]) -> None:
        """The rollup of one day, replaced whole (a rerun gives the same rows)."""
        await self.session.execute(delete(StatsDaily).where(StatsDaily.day == day))
        self.session.add_all(rows)

    async def daily(self, day: str) -> Sequence[StatsDaily]:
        result = await self.session.execute(
            select(StatsDaily).where(StatsDaily.day == day).order_by(StatsDaily.id)
        )
        return result.scalars().all()
