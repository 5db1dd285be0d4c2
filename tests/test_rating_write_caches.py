"""The shortcuts of the batched rating write give what the long way gives.

Bad inputs tried: a memoized working-day deadline asked again across National Day, a weekend,
an adjusted working Saturday, the fallback year and a start whose UTC and local dates differ;
a record with an attribute its model lacks; a profile that sends the clear number and one that
does not (and a stored number that does not decrypt, which only the first needs); ids inserted
after a gap, and after an id at SQLite's maximum.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, insert, inspect, select

from pingjia.composition import Services
from rating.cases.models import Case, Evaluation, Rating
from rating.cases.registration import ServiceRecord
from rating.cases.repository import Repository
from rating.db.records import new_record
from rating.outbox.central import rating_values
from rating.policy.deadlines import compute_deadlines
from rating.policy.loader import load_profile
from rating.policy.profile import Profile
from rating.policy.workdays import WorkCalendar
from rating.privacy import PhoneVault
from rating.tickets.models import Ticket
from tests.conftest import START

SHANGHAI = ZoneInfo("Asia/Shanghai")
STARTS = [
    datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI),  # the eve of National Day
    datetime(2026, 9, 30, 17, 30, tzinfo=UTC),  # already 1 October in Shanghai
    datetime(2026, 10, 9, 23, 59, 59, tzinfo=SHANGHAI),  # Friday before a working Saturday
    datetime(2026, 11, 21, 12, 0, tzinfo=SHANGHAI),  # a Saturday
    datetime(2026, 12, 24, 9, 0, tzinfo=SHANGHAI),  # counting into 2027, the fallback
    datetime(2027, 2, 5, 8, 0, tzinfo=ZoneInfo("America/New_York")),  # a foreign zone
]


def _uncached(calendar: WorkCalendar, start: datetime, n: int) -> datetime:
    """add_workdays the long way: day by day over is_workday."""
    day, counted = start.date(), 0
    while counted < n:
        day += timedelta(days=1)
        counted += calendar.is_workday(day)
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=start.tzinfo)


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.isoformat())
def test_memoized_workday_deadline_equals_the_counted_one(start: datetime) -> None:
    calendar = WorkCalendar(holidays=[date(2027, 1, 1)])
    local = start.astimezone(SHANGHAI)
    for n in (1, 3, 10):
        first = calendar.add_workdays(local, n)
        assert first == _uncached(WorkCalendar(holidays=[date(2027, 1, 1)]), local, n)
        again = calendar.add_workdays(local.replace(hour=3, minute=7), n)  # memoized now
        assert again == first and again.tzinfo is local.tzinfo
    # The memo is by local date: a start in another zone keeps its own date and zone.
    assert calendar.add_workdays(start, 10) == _uncached(calendar, start, 10)


def test_memoized_profile_deadlines_equal_a_fresh_calendars() -> None:
    taishan = load_profile("taishan")
    shared = WorkCalendar.from_profile(taishan)
    for start in STARTS:
        for minutes in (0, 1, 600):
            at = start + timedelta(minutes=minutes)
            fresh = compute_deadlines(taishan, at, WorkCalendar.from_profile(taishan))
            assert compute_deadlines(taishan, at, shared) == fresh
    # 1-7 Oct 2026 are off; Sat 10 Oct is worked: 8, 9, 10, 12-16, 19, 20 October.
    callback = compute_deadlines(taishan, STARTS[0], shared)["callback"]
    assert callback == datetime(2026, 10, 20, 23, 59, 59, tzinfo=SHANGHAI)


def test_a_record_reads_like_a_constructed_object() -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    values = {"evaluation_id": 7, "level": 4, "score": 3.0, "channel": "ivr", "tags": ["x"]}
    record = new_record(Rating, {**values, "rated_at": now})
    built = Rating(**values, rated_at=now)
    assert {k: getattr(record, k) for k in values} == {k: getattr(built, k) for k in values}
    assert record.reason is None and record.id is None and record.evaluation is None
    assert inspect(record).transient
    record.adopted = True  # an ordinary attribute still
    assert record.adopted is True
    with pytest.raises(TypeError, match="Ticket has no attribute levle"):
        new_record(Ticket, {"levle": 4})


def _adopted(profile: Profile, vault: PhoneVault, phone_enc: str) -> dict[str, object]:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    case = Case(id=1, case_no="C1", phone_enc=phone_enc, phone_masked="138****5678")
    evaluation = Evaluation(id=1, case=case)
    rating = Rating(id=9, level=4, channel="ivr", tags=[], attempt=1, rated_at=now)
    return rating_values(profile, vault, evaluation, rating, now)["payload"]  # type: ignore[no-any-return]


def test_the_clear_number_is_decrypted_only_where_it_goes_out() -> None:
    vault = PhoneVault(b"k" * 32)
    masked = load_profile("taishan")
    assert masked.central_store.send_phone_in_clear is False
    clear = masked.model_copy(
        update={
            "central_store": masked.central_store.model_copy(update={"send_phone_in_clear": True})
        }
    )
    token = vault.encrypt("13812345678")
    assert _adopted(masked, vault, token)["rater"] == "138****5678"
    assert _adopted(clear, vault, token)["rater"] == "13812345678"
    other_key = PhoneVault(b"o" * 32).encrypt("13812345678")
    assert _adopted(masked, vault, other_key)["rater"] == "138****5678"  # never decrypted
    with pytest.raises(ValueError, match="does not decrypt"):
        _adopted(clear, vault, other_key)


async def test_insert_all_gives_each_row_its_own_id(services: Services) -> None:
    """On SQLite the ids come back unordered and are matched by order (rating/db/records.py):
    each object must still carry the id of its own row, after a gap in the ids too; an id at
    SQLite's maximum makes it number at random, and the batch then fails instead of guessing."""
    for i in range(3):
        record = ServiceRecord(f"I{i}", "complaint", None, START)
        await services.ratings.register(record, actor="test", now=START)
    async with services.sessions() as session:
        evaluation_id = (await session.execute(select(Evaluation.id).limit(1))).scalar_one()

    def rows(tag: str, n: int) -> list[Rating]:
        return [
            new_record(
                Rating,
                {
                    "evaluation_id": evaluation_id,
                    "level": 1 + i % 5,
                    "score": 1.0,
                    "channel": "api",
                    "tags": [],
                    "source_ref": f"{tag}{i}",
                    "rated_at": START,
                },
            )
            for i in range(n)
        ]

    first, second = rows("a", 40), rows("b", 25)
    async with services.sessions() as session:
        await Repository(session).insert_all(first)
        await session.execute(delete(Rating).where(Rating.source_ref == "a20"))  # a gap
        await Repository(session).insert_all(second)
        await session.commit()
        stored = dict((await session.execute(select(Rating.id, Rating.source_ref))).all())
    assert len(stored) == 64
    for rating in first + second:
        if rating.source_ref != "a20":
            assert stored[rating.id] == rating.source_ref
    if services.engine.dialect.name != "sqlite":
        return
    async with services.sessions() as session:
        top = new_record(Rating, {**_values(rows("c", 1)[0]), "id": 2**63 - 1})
        await session.execute(insert(Rating), [_values(top)])
        with pytest.raises(RuntimeError, match="not consecutive"):
            await Repository(session).insert_all(rows("d", 6))


def _values(rating: Rating) -> dict[str, object]:
    return {k: v for k, v in rating.__dict__.items() if not k.startswith("_")}
