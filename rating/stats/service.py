"""Statistics (SPEC §4): counts per level, satisfaction rate, average score, ticket outcomes.

A rating ruled not adopted (false or malicious) is kept but left out of every figure but the
count of not-adopted tickets. The nightly rollup stores per-day figures in `stats_daily`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.errors import InvalidInput
from rating.policy.profile import Profile
from rating.stats.models import StatsDaily
from rating.stats.repository import GROUPS, StatsRepository
from rating.sweeps.claims import ClaimRepository

SATISFIED_LEVELS = (1, 2, 3)  # 非常满意, 满意, 基本满意
ROLLUP_GROUPS = ("agency", "agent", "channel")


@dataclass
class Figures:
    key: str
    levels: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    score_sum: float = 0.0
    tickets: int = 0
    verified_on_time: int = 0
    rectified: int = 0
    not_adopted: int = 0

    @property
    def count(self) -> int:
        return sum(self.levels.values())

    @property
    def satisfaction_rate(self) -> float | None:
        total = self.count
        return round(sum(self.levels[lv] for lv in SATISFIED_LEVELS) / total, 4) if total else None

    @property
    def average_score(self) -> float | None:
        return round(self.score_sum / self.count, 2) if self.count else None

    def share(self, part: int) -> float | None:
        return round(part / self.tickets, 4) if self.tickets else None


class StatsService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], profile: Profile) -> None:
        self.sessions = sessions
        self.profile = profile

    async def figures(
        self, start: datetime, end: datetime, group_by: str | None
    ) -> tuple[Figures, list[Figures]]:
        """Totals and per-group figures for ratings in [start, end)."""
        if group_by is not None and group_by not in GROUPS:
            raise InvalidInput(
                f"group_by must be one of {', '.join(GROUPS)}",
                code="invalid_group",
                params={"groups": GROUPS},
            )
        if end <= start:
            raise InvalidInput("`to` must be after `from`", code="invalid_period")
        tz = self.profile.tz
        async with self.sessions() as session:
            repo = StatsRepository(session)
            level_rows = await repo.levels(start, end, group_by, tz)
            ticket_rows = await repo.tickets(start, end, group_by, tz)
        groups: dict[str, Figures] = {}
        total = Figures("all")
        for key, level, count, score in level_rows:
            for fig in (groups.setdefault(key, Figures(key)), total):
                fig.levels[level] += count
                fig.score_sum += score
        for key, tickets, on_time, rectified, not_adopted in ticket_rows:
            for fig in (groups.setdefault(key, Figures(key)), total):
                fig.tickets += tickets
                fig.verified_on_time += on_time
                fig.rectified += rectified
                fig.not_adopted += not_adopted
        ordered = [groups[k] for k in sorted(groups)] if group_by else []
        return total, ordered

    def local_day(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(0), tzinfo=self.profile.tz)
        return start, start + timedelta(days=1)

    async def rollup(self, now: datetime, days: int = 3, owner: str = "scheduler") -> int:
        """Store the figures of the last `days` local days; once per day across processes."""
        today = now.astimezone(self.profile.tz).date()
        written = 0
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            async with self.sessions() as session:
                claims = ClaimRepository(session)
                item = int(day.strftime("%Y%m%d"))
                won = await claims.lease(
                    "stats_rollup", [item], now, owner, now + timedelta(hours=1)
                )
                await session.commit()
            if not won:
                continue
            rows = await self._day_rows(day, now)
            async with self.sessions() as session:
                await StatsRepository(session).replace_day(day.isoformat(), rows)
                await session.commit()
            written += len(rows)
        return written

    async def _day_rows(self, day: date, now: datetime) -> list[StatsDaily]:
        start, end = self.local_day(day)
        rows: list[StatsDaily] = []
        for group_by in ROLLUP_GROUPS:
            _, groups = await self.figures(start, end, group_by)
            for fig in groups:
                for level, count in fig.levels.items():
                    if count:
                        rows.append(
                            StatsDaily(
                                day=day.isoformat(),
                                group_by=group_by,
                                group_key=fig.key,
                                level=level,
                                count=count,
                                score_sum=count * self.profile.score(level),
                                computed_at=now,
                            )
                        )
        return rows

    async def daily(self, day: date) -> list[StatsDaily]:
        async with self.sessions() as session:
            return list(await StatsRepository(session).daily(day.isoformat()))
