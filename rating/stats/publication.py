"""Public results (Sanmenxia Art. 16 向社会公布, Taishan Art. 23 向社会发布): per agency and
local month, the number of ratings, the satisfaction rate, the average score, the bad ratings
and how many of them were rectified on time; only the agency-months the bureau published.

The figures are the statistics' own (StatsService.figures over the local month, grouped by
agency), so the public page and GET /api/v1/stats agree. Nothing personal and no free text
leaves here: counts and rates only, under the agency's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import audit_entry
from rating.cases.models import Case, Rating
from rating.db.records import SessionRepository
from rating.errors import InvalidInput
from rating.policy.profile import Profile
from rating.stats.models import PublishedMonth
from rating.stats.service import Figures, StatsService
from rating.tickets.models import Ticket, TicketEvent
from rating.tickets.repository import TicketRepository
from rating.tickets.rules import GrantedExtension, deadlines_in_force, stage_deadline

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
BAD_LEVELS = (4, 5)  # 不满意, 非常不满意
CACHE_SECONDS = 300  # the public page is read far more often than results change


@dataclass(frozen=True)
class AgencyResult:
    agency: str
    ratings: int
    satisfaction_rate: float | None
    average_score: float | None
    bad_ratings: int
    rectified_on_time: int


@dataclass(frozen=True)
class MonthResults:
    month: str
    agencies: list[AgencyResult]


def parse_month(raw: str) -> date:
    """The first day of a `YYYY-MM` month, or an InvalidInput naming the fault."""
    found = MONTH.match(raw)
    if not found:
        raise InvalidInput(
            f"月份格式应为 YYYY-MM，例如 2026-11：{raw[:20]!r}",
            code="invalid_month",
            params={"value": repr(raw[:20])},
        )
    return date(int(found[1]), int(found[2]), 1)


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


class PublicationRepository(SessionRepository):
    async def published(self, month: str | None = None) -> Sequence[PublishedMonth]:
        """Published agency-months, newest month first, agencies by name."""
        query = select(PublishedMonth).order_by(PublishedMonth.month.desc(), PublishedMonth.agency)
        if month is not None:
            query = query.where(PublishedMonth.month == month)
        return (await self.session.execute(query)).scalars().all()

    async def replace_month(
        self, month: str, agencies: set[str], actor: str, now: datetime
    ) -> None:
        """The month's published agencies become exactly `agencies`."""
        kept = {p.agency for p in await self.published(month)}
        withdrawn = kept - agencies
        if withdrawn:
            await self.session.execute(
                delete(PublishedMonth).where(
                    PublishedMonth.month == month, PublishedMonth.agency.in_(withdrawn)
                )
            )
        for agency in sorted(agencies - kept):
            self.add(
                PublishedMonth(agency=agency, month=month, published_by=actor, published_at=now)
            )

    async def rectified(self, start: datetime, end: datetime) -> list[tuple[str, int, Any]]:
        """(agency, ticket id, original deadlines) of the period's confirmed, rectified tickets."""
        query = (
            select(Case.agency, Ticket.id, Ticket.deadlines)
            .select_from(Ticket)
            .join(Rating, Rating.id == Ticket.rating_id)
            .join(Case, Case.id == Ticket.case_id)
            .where(
                Rating.rated_at >= start,
                Rating.rated_at < end,
                Ticket.verdict == "confirmed",
                Ticket.feedback.is_not(None),
            )
        )
        rows = (await self.session.execute(query)).all()
        return [(r[0] or "", int(r[1]), r[2] or {}) for r in rows]


class PublicResults:
    """What the bureau publishes and what the public page shows."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], profile: Profile, stats: StatsService
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.stats = stats
        self._cache: tuple[datetime, list[MonthResults]] | None = None

    def period(self, month: str) -> tuple[datetime, datetime]:
        """The local month as [start, end) aware datetimes."""
        first = parse_month(month)
        tz = self.profile.tz
        return (
            datetime.combine(first, time(0), tzinfo=tz),
            datetime.combine(next_month(first), time(0), tzinfo=tz),
        )

    def current_month(self, now: datetime) -> str:
        return now.astimezone(self.profile.tz).strftime("%Y-%m")

    async def candidates(self, month: str) -> list[str]:
        """Agencies with adopted ratings in the month (a case without an agency has none)."""
        _, groups = await self.stats.figures(*self.period(month), "agency")
        return [g.key for g in groups if g.key and g.count]

    async def published(self, month: str | None = None) -> list[PublishedMonth]:
        async with self.sessions() as session:
            return list(await PublicationRepository(session).published(month))

    async def publish(
        self, month: str, agencies: Iterable[str], actor: str, now: datetime
    ) -> list[str]:
        """Publish exactly these agencies for the month (the others are withdrawn)."""
        chosen = {a.strip() for a in agencies}
        parse_month(month)
        if month > self.current_month(now):
            raise InvalidInput(
                f"不能公布未来月份的结果：{month}", code="future_month", params={"month": month}
            )
        unknown = sorted(chosen - set(await self.candidates(month)))
        if unknown:
            raise InvalidInput(
                f"{month} 没有这些单位的评价，不能公布：{'、'.join(a[:40] for a in unknown)}",
                code="agency_without_ratings",
                params={"month": month, "agencies": [a[:40] for a in unknown]},
            )
        async with self.sessions() as session:
            repo = PublicationRepository(session)
            await repo.replace_month(month, chosen, actor, now)
            repo.add(
                audit_entry(
                    now, actor, "publish_results", "results", month, agencies=sorted(chosen)
                )
            )
            await session.commit()
        self._cache = None
        return sorted(chosen)

    async def results(self, now: datetime) -> list[MonthResults]:
        """Every published month, newest first; computed at most every CACHE_SECONDS."""
        if self._cache is not None and self._cache[0] > now:
            return self._cache[1]
        by_month: dict[str, set[str]] = {}
        for row in await self.published():
            by_month.setdefault(row.month, set()).add(row.agency)
        months = [await self.month_results(m, a) for m, a in sorted(by_month.items(), reverse=True)]
        self._cache = (now + timedelta(seconds=CACHE_SECONDS), months)
        return months

    async def month_results(self, month: str, agencies: set[str]) -> MonthResults:
        start, end = self.period(month)
        _, groups = await self.stats.figures(start, end, "agency")
        on_time = await self.rectified_on_time(start, end)
        return MonthResults(
            month,
            [self._result(g, on_time.get(g.key, 0)) for g in groups if g.key in agencies],
        )

    @staticmethod
    def _result(fig: Figures, rectified_on_time: int) -> AgencyResult:
        return AgencyResult(
            agency=fig.key,
            ratings=fig.count,
            satisfaction_rate=fig.satisfaction_rate,
            average_score=fig.average_score,
            bad_ratings=sum(fig.levels[level] for level in BAD_LEVELS),
            rectified_on_time=rectified_on_time,
        )

    async def rectified_on_time(self, start: datetime, end: datetime) -> dict[str, int]:
        """Per agency, the period's bad ratings rectified by the deadline in force (extensions
        granted included): the rectification deadline where the profile has one (Sanmenxia:
        15 days), otherwise its last one (Taishan: 回访核实并作相应处理及反馈, 10 working days)."""
        rules = self.profile.ticket_deadlines
        name = stage_deadline(self.profile, "rectifying") or (rules[-1].name if rules else None)
        async with self.sessions() as session:
            rows = await PublicationRepository(session).rectified(start, end)
            tickets = TicketRepository(session)
            ids = [ticket_id for _, ticket_id, _ in rows]
            events, extensions = await tickets.events_for(ids), await tickets.extensions_for(ids)
        counts: dict[str, int] = {}
        for agency, ticket_id, original in rows:
            done = _rectified_at(events[ticket_id])
            granted = [
                GrantedExtension(e.deadline, e.requested_due_at, e.decided_at)
                for e in extensions[ticket_id]
                if e.status == "granted" and e.decided_at is not None
            ]
            due = deadlines_in_force(original, granted).get(name) if name else None
            if done is not None and (due is None or done <= due):
                counts[agency] = counts.get(agency, 0) + 1
        return counts


def _rectified_at(events: list[TicketEvent]) -> datetime | None:
    times = [e.at for e in events if e.action == "rectify"]
    return max(times) if times else None
