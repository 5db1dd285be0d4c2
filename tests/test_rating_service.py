"""RatingService on its own: retries of one attempt, concurrent tries, what it answers.

Bad inputs tried: an unknown kind, a naive completion time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import func, select

from pingjia.composition import Services
from rating.cases.models import Rating
from rating.cases.registration import ServiceRecord
from rating.errors import InvalidInput
from rating.ratings.requests import RatingRequest
from rating.tickets.models import Ticket
from tests.conftest import START


async def _register(services: Services, case_no: str = "S1") -> None:
    record = ServiceRecord(case_no, "complaint", "13812345678", START)
    await services.ratings.register(record, actor="test", now=START)


async def test_concurrent_tries_of_one_attempt_write_one_rating(services: Services) -> None:
    await _register(services)
    request = RatingRequest(
        "S1", 5, "ivr", ["staff_hostile"], source_ref="agi:1700.1", require_reason=False
    )
    outcomes = await asyncio.gather(
        *(services.ratings.rate(request, actor="ivr", now=START) for _ in range(4))
    )
    assert len({o.rating.id for o in outcomes}) == 1
    assert all(o.adopted for o in outcomes)
    assert sorted(o.replayed for o in outcomes) == [False, True, True, True]
    assert len({o.ticket.ticket_no for o in outcomes if o.ticket}) == 1
    async with services.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Rating))).scalar_one() == 1
        assert (await session.execute(select(func.count()).select_from(Ticket))).scalar_one() == 1


async def test_answers_reflect_the_committed_state(services: Services) -> None:
    await _register(services)
    first = await services.ratings.rate(RatingRequest("S1", 2, "api"), actor="t", now=START)
    assert first.evaluation.status == "rated"
    assert [r.id for r in first.evaluation.ratings] == [first.rating.id]
    second = await services.ratings.rate(RatingRequest("S1", 1, "sms"), actor="t", now=START)
    assert not second.adopted and second.evaluation.status == "rated"
    assert [r.adopted for r in second.evaluation.ratings] == [True, False]
    stored = await services.ratings.evaluation("S1")
    assert (stored.status, stored.adopted_rating_id) == ("rated", first.rating.id)
    assert [(r.level, r.adopted) for r in stored.ratings] == [(2, True), (1, False)]


async def test_register_returns_the_new_evaluation_whole(services: Services) -> None:
    evaluation, created = await services.ratings.register(
        ServiceRecord("S2", "consultation", None, START), actor="t", now=START
    )
    assert created and evaluation.id and evaluation.ratings == []
    assert evaluation.case.case_no == "S2" and evaluation.case.phone_masked is None


async def test_bad_registrations(services: Services) -> None:
    with pytest.raises(InvalidInput):
        await services.ratings.register(
            ServiceRecord("S3", "praise", None, START), actor="t", now=START
        )
    with pytest.raises(InvalidInput, match="须带时区偏移"):
        await services.ratings.register(
            ServiceRecord("S3", "complaint", None, datetime(2026, 11, 20, 9)), actor="t", now=START
        )
