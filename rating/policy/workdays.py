"""Working days: the official Chinese calendar, with a fallback for years it does not cover."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

import chinese_calendar  # type: ignore[import-untyped]

from rating.policy.profile import Profile

log = logging.getLogger("pingjia.workdays")

END_OF_DAY = time(23, 59, 59)


class WorkCalendar:
    """Working days per chinese-calendar; weekends plus override lists for uncovered years.

    `holidays` and `workdays` (adjusted working weekends, 调休) are consulted only for years
    chinese-calendar does not cover: for covered years the library is authoritative. The
    fallback warns once per year per calendar, so build one calendar and keep it.
    """

    def __init__(self, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> None:
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        self._covered: dict[int, bool] = {}
        self._days: dict[date, bool] = {}  # answers so far: chinese-calendar is slow per call
        # add_workdays' answers by (start date, n): every ticket of a day asks the same one.
        self._ends: dict[tuple[date, int], date] = {}
        self._warned: set[int] = set()

    @classmethod
    def from_profile(cls, profile: Profile) -> WorkCalendar:
        """A calendar with the profile's workday overrides."""
        overrides = profile.workday_overrides
        return cls(holidays=overrides.holidays, workdays=overrides.workdays)

    def covers(self, year: int) -> bool:
        """Whether chinese-calendar has official data for this year."""
        if year not in self._covered:
            try:
                chinese_calendar.is_workday(date(year, 6, 1))
            except NotImplementedError:
                self._covered[year] = False
            else:
                self._covered[year] = True
        return self._covered[year]

    def is_workday(self, day: date) -> bool:
        """Whether `day` is a working day (调休 weekends count as working days)."""
        if isinstance(day, datetime):
            day = day.date()
        known = self._days.get(day)
        if known is None:
            known = self._days[day] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        if self.covers(day.year):
            return bool(chinese_calendar.is_workday(day))
        self._warn_fallback(day.year)
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        return day.weekday() < 5

    def add_workdays(self, start: datetime, n: int) -> datetime:
        """The end (23:59:59) of the n-th working day after `start`'s date, in `start`'s tz.

        Counting begins the day after `start`'s own date, whatever the time of day, so a case
        completed on a working day does not use that day. `start` should already be in the
        timezone whose dates count (deadlines.py converts it to the profile's).
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        first = start.date()
        day = self._ends.get((first, n))
        if day is None:
            day = self._ends[(first, n)] = self._nth_workday_after(first, n)
        return datetime.combine(day, END_OF_DAY, tzinfo=start.tzinfo)

    def _nth_workday_after(self, day: date, n: int) -> date:
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return day

    def _warn_fallback(self, year: int) -> None:
        if year in self._warned:
            return
        self._warned.add(year)
        holidays = sum(1 for d in self._holidays if d.year == year)
        workdays = sum(1 for d in self._workdays if d.year == year)
        log.warning(
            "chinese-calendar has no official holidays for %d: counting weekends plus the "
            "profile's workday_overrides (%d holidays, %d adjusted workdays for %d). Add the "
            "State Council's %d holidays to workday_overrides.holidays and its adjusted "
            "working weekends (调休) to workday_overrides.workdays, or upgrade chinesecalendar.",
            year,
            holidays,
            workdays,
            year,
            year,
        )
