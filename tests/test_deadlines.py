"""Ticket deadlines from the two cities' rules, on known dates."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from rating.policy.deadlines import compute_deadlines, deadline_for
from rating.policy.loader import load_profile
from rating.policy.profile import DeadlineRule, Profile
from rating.policy.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def taishan() -> Profile:
    return load_profile("taishan")


@pytest.fixture(scope="module")
def sanmenxia() -> Profile:
    return load_profile("sanmenxia")


@pytest.mark.article("taishan", 21)
def test_taishan_callback_waits_out_national_day(taishan: Profile) -> None:
    # 1-7 Oct 2026 are off; Sat 10 Oct is worked: 8, 9, 10, 12-16, 19, 20 October.
    deadlines = compute_deadlines(taishan, at("2026-09-30T10:00:00+08:00"))
    assert deadlines == {"callback": at("2026-10-20T23:59:59+08:00")}
    assert deadlines["callback"].tzinfo == SHANGHAI


@pytest.mark.article("sanmenxia", 15)
def test_sanmenxia_verify_in_hours_rectify_in_natural_days(sanmenxia: Profile) -> None:
    deadlines = compute_deadlines(sanmenxia, at("2026-11-20T20:00:00+08:00"))  # a Friday
    assert deadlines == {
        "verify": at("2026-11-21T20:00:00+08:00"),  # Saturday: hours ignore weekends
        "rectify": at("2026-12-05T20:00:00+08:00"),
    }
    assert list(deadlines) == ["verify", "rectify"]


def test_results_are_in_the_profile_zone_whatever_the_input(sanmenxia: Profile) -> None:
    deadlines = compute_deadlines(sanmenxia, at("2026-11-20T12:00:00+00:00"))
    assert deadlines["verify"] == at("2026-11-21T20:00:00+08:00")
    assert all(d.tzinfo == SHANGHAI for d in deadlines.values())
    assert deadlines["verify"].hour == 20 and deadlines["rectify"].hour == 20


def test_workdays_count_from_the_local_date(taishan: Profile) -> None:
    # Thu 19 Nov 17:00 UTC is already Fri 20 Nov 01:00 in Taishan: counting starts on the 21st.
    deadlines = compute_deadlines(taishan, at("2026-11-19T17:00:00+00:00"))
    assert deadlines["callback"] == at("2026-12-04T23:59:59+08:00")


def test_adjusted_working_saturday_counts(taishan: Profile) -> None:
    one_day = DeadlineRule(name="check", title="核查", amount=1, unit="workdays")
    friday = at("2026-10-09T15:00:00+08:00")
    due = deadline_for(one_day, friday, WorkCalendar(), taishan.tz)
    assert due == at("2026-10-10T23:59:59+08:00")  # Saturday 10 October 2026, 调休
    assert due.date().weekday() == 5


def test_deadline_reaching_into_2027_uses_the_fallback(
    taishan: Profile, caplog: pytest.LogCaptureFixture
) -> None:
    calendar = WorkCalendar.from_profile(taishan)
    with caplog.at_level(logging.WARNING, logger="pingjia.workdays"):
        first = compute_deadlines(taishan, at("2026-12-25T10:00:00+08:00"), calendar)
        again = compute_deadlines(taishan, at("2026-12-28T10:00:00+08:00"), calendar)
    # 28-31 Dec 2026 (official), then 1, 4-8 Jan 2027 on weekends only: no 2027 list yet.
    assert first == {"callback": at("2027-01-08T23:59:59+08:00")}
    assert again == {"callback": at("2027-01-11T23:59:59+08:00")}
    warnings = [r for r in caplog.records if r.name == "pingjia.workdays"]
    assert len(warnings) == 1  # once per year per calendar
    assert "2027" in warnings[0].getMessage()
    assert "workday_overrides" in warnings[0].getMessage()


def test_fallback_honours_listed_holidays(taishan: Profile) -> None:
    calendar = WorkCalendar(holidays=[date(2027, 1, 1)])  # test data, not the official list
    deadlines = compute_deadlines(taishan, at("2026-12-25T10:00:00+08:00"), calendar)
    assert deadlines == {"callback": at("2027-01-11T23:59:59+08:00")}


def test_hours_are_elapsed_time_days_keep_the_clock() -> None:
    # New York enters DST on 8 March 2026: 24 hours later is 13:00, one day later is 12:00.
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 7, 12, tzinfo=new_york)
    hours = DeadlineRule(name="h", title="时", amount=24, unit="hours")
    days = DeadlineRule(name="d", title="天", amount=1, unit="days")
    assert deadline_for(hours, start, WorkCalendar(), new_york).hour == 13
    assert deadline_for(days, start, WorkCalendar(), new_york).hour == 12


def test_naive_start_is_rejected(taishan: Profile, sanmenxia: Profile) -> None:
    naive = datetime(2026, 11, 20, 20, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_deadlines(sanmenxia, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_for(taishan.ticket_deadlines[0], naive, WorkCalendar(), taishan.tz)


def test_deadlines_people_read_have_no_microseconds(sanmenxia: Profile, taishan: Profile) -> None:
    start = at("2026-11-20T15:24:51.204971+08:00")
    verify = compute_deadlines(sanmenxia, start)["verify"]
    assert verify.isoformat() == "2026-11-21T15:24:51+08:00"
    assert compute_deadlines(sanmenxia, start)["rectify"].microsecond == 0
    assert compute_deadlines(taishan, start)["callback"].microsecond == 0
