"""Ticket deadlines: pure functions of a profile's rules and a start time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rating.policy.profile import DeadlineRule, Profile
from rating.policy.workdays import WorkCalendar


def _require_aware(start: datetime) -> None:
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"deadlines need a timezone-aware start, got naive {start.isoformat()}")


def deadline_for(
    rule: DeadlineRule, start: datetime, calendar: WorkCalendar, tz: ZoneInfo
) -> datetime:
    """The deadline of one rule, as an aware datetime in `tz`.

    - `hours`: start + N hours of elapsed time.
    - `days`: start + N calendar days at the same local clock time (natural days).
    - `workdays`: working days are counted in `tz` from the day after start's local date;
      the deadline is the end (23:59:59 local) of the N-th working day.
    Raises ValueError for a naive start.
    """
    _require_aware(start)
    if rule.unit == "hours":
        return (start.astimezone(UTC) + timedelta(hours=rule.amount)).astimezone(tz)
    local = start.astimezone(tz)
    if rule.unit == "days":
        # Wall-clock arithmetic, then a round trip through UTC to normalise a DST gap.
        return (local + timedelta(days=rule.amount)).astimezone(UTC).astimezone(tz)
    return calendar.add_workdays(local, rule.amount)


def compute_deadlines(
    profile: Profile, start: datetime, calendar: WorkCalendar | None = None
) -> dict[str, datetime]:
    """Every ticket deadline of the profile, by rule name, in the profile's timezone, in whole
    seconds (a deadline people read has no microseconds).

    Pass the long-lived calendar so the fallback warning for uncovered years is logged once;
    without one, a calendar is built from the profile's workday overrides.
    """
    _require_aware(start)
    cal = calendar if calendar is not None else WorkCalendar.from_profile(profile)
    tz = profile.tz
    return {
        rule.name: deadline_for(rule, start, cal, tz).replace(microsecond=0)
        for rule in profile.ticket_deadlines
    }
