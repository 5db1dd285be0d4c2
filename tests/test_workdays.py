"""Working days: chinese-calendar for covered years, weekends plus overrides after that."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from rating.policy.loader import load_profile
from rating.policy.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_covers_what_chinese_calendar_knows() -> None:
    cal = WorkCalendar()
    assert cal.covers(2004) and cal.covers(2026)
    assert not cal.covers(2027) and not cal.covers(2003)


def test_official_holidays_and_adjusted_weekends_2026() -> None:
    cal = WorkCalendar()
    # National Day 2026: 1-7 October off, Saturday 10 October and Sunday 20 September worked.
    assert not any(cal.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert cal.is_workday(date(2026, 10, 10))  # Saturday, 调休
    assert cal.is_workday(date(2026, 9, 20))  # Sunday, 调休
    assert cal.is_workday(date(2026, 1, 4))  # Sunday, 调休 after New Year
    assert not cal.is_workday(date(2026, 10, 11))  # an ordinary Sunday
    assert not cal.is_workday(date(2026, 9, 25))  # Friday, 中秋节
    assert cal.is_workday(date(2026, 11, 20))  # an ordinary Friday


def test_overrides_are_ignored_where_the_calendar_is_official(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cal = WorkCalendar(holidays=[date(2026, 11, 20)], workdays=[date(2026, 11, 21)])
    with caplog.at_level(logging.WARNING, logger="pingjia.workdays"):
        assert cal.is_workday(date(2026, 11, 20))
        assert not cal.is_workday(date(2026, 11, 21))
    assert caplog.records == []


def test_fallback_uses_weekends_and_overrides(caplog: pytest.LogCaptureFixture) -> None:
    # Test data, not the official 2027 schedule.
    cal = WorkCalendar(holidays=[date(2027, 1, 1)], workdays=[date(2027, 2, 20)])
    with caplog.at_level(logging.WARNING, logger="pingjia.workdays"):
        assert not cal.is_workday(date(2027, 1, 1))  # Friday, listed holiday
        assert not cal.is_workday(date(2027, 1, 2))  # Saturday
        assert cal.is_workday(date(2027, 1, 4))  # Monday
        assert cal.is_workday(date(2027, 2, 20))  # Saturday, listed workday
        assert not cal.is_workday(date(2027, 2, 21))  # Sunday
        assert cal.is_workday(date(2028, 1, 3))  # another uncovered year: one more warning
    warnings = [r for r in caplog.records if r.name == "pingjia.workdays"]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    first = warnings[0].getMessage()
    assert "2027" in first and "workday_overrides.holidays" in first
    assert "workday_overrides.workdays" in first
    assert "(1 holidays, 1 adjusted workdays for 2027)" in first
    assert "2028" in warnings[1].getMessage()


def test_from_profile_takes_the_overrides() -> None:
    cal = WorkCalendar.from_profile(load_profile("sanmenxia"))
    assert cal.is_workday(date(2027, 1, 1))  # nothing listed yet: a plain Friday
    assert cal.is_workday(date(2026, 10, 10))


def test_add_workdays_counts_from_the_next_day() -> None:
    cal = WorkCalendar()
    friday = datetime(2026, 10, 9, 10, tzinfo=SHANGHAI)
    assert cal.add_workdays(friday, 1) == datetime(2026, 10, 10, 23, 59, 59, tzinfo=SHANGHAI)
    assert cal.add_workdays(friday, 2) == datetime(2026, 10, 12, 23, 59, 59, tzinfo=SHANGHAI)
    late = datetime(2026, 11, 20, 23, 59, tzinfo=SHANGHAI)  # a Friday, just before midnight
    assert cal.add_workdays(late, 1) == datetime(2026, 11, 23, 23, 59, 59, tzinfo=SHANGHAI)


def test_add_workdays_needs_a_positive_count() -> None:
    with pytest.raises(ValueError):
        WorkCalendar().add_workdays(datetime(2026, 11, 20, tzinfo=SHANGHAI), 0)
