"""The start-of-call case check (rating/cases/status.py): statuses in batches, unknown cases
registered as `register` would.

Runs on SQLite and PostgreSQL (the `services` fixture). Bad inputs tried: an unknown kind, a
completion time without a UTC offset, an unusable phone number, the same unknown case twice in
one batch, a case registered by another path between two checks.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import func, select

from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.cases.models import Case
from rating.cases.registration import ServiceRecord
from rating.errors import InvalidInput
from rating.ratings.requests import RatingRequest
from tests.conftest import START
from tests.sql_count import SqlCount, counting


def _record(case_no: str, **changes: object) -> ServiceRecord:
    values: dict[str, object] = {
        "case_no": case_no,
        "kind": "complaint",
        "phone": "13812345678",
        "completed_at": START,
        "source": "ivr",
    }
    values.update(changes)
    return ServiceRecord(**values)  # type: ignore[arg-type]


async def _count(services: Services, model: type, **where: str) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    async with services.sessions() as session:
        return int((await session.execute(query)).scalar_one())


async def test_known_cases_answer_their_status_and_unknown_ones_are_registered(
    services: Services,
) -> None:
    ratings = services.ratings
    await ratings.register(_record("K1"), actor="test", now=START)
    await ratings.register(_record("K2"), actor="test", now=START)
    await ratings.rate(RatingRequest("K2", 1, "web"), actor="web", now=START)
    with counting(services.engine) as sql:
        k1, k2, new, again = await asyncio.gather(
            ratings.case_status(_record("K1"), actor="ivr", now=START),
            ratings.case_status(_record("K2"), actor="ivr", now=START),
            ratings.case_status(_record("N1"), actor="ivr", now=START),
            ratings.case_status(_record("N1"), actor="ivr", now=START),
        )
    assert 1 <= sql.transactions <= 2, sql  # the first alone, the rest together
    assert (k1.status, k1.created) == ("pending", False)
    assert (k2.status, k2.created) == ("rated", False)
    assert (new.status, new.created) == ("pending", True)
    assert (again.status, again.created) == ("pending", False)  # the same case, registered once
    assert await _count(services, Case, case_no="N1") == 1
    assert await _count(services, AuditEntry, action="case.registered", entity_id="N1") == 1
    registered = await ratings.evaluation("N1")
    assert registered.case.source == "ivr" and registered.case.phone_masked == "138****5678"
    # Known now: answered by the status read, not registered again.
    later = await ratings.case_status(_record("N1"), actor="ivr", now=START)
    assert (later.status, later.created) == ("pending", False)
    assert await _count(services, AuditEntry, action="case.registered", entity_id="N1") == 1


async def test_bad_case_reports_are_refused_before_any_batch(services: Services) -> None:
    ratings = services.ratings
    with counting(services.engine) as sql:
        with pytest.raises(InvalidInput, match="诉求类型应为以下之一"):
            await ratings.case_status(_record("B1", kind="praise"), actor="ivr", now=START)
        with pytest.raises(InvalidInput, match="须带时区偏移"):
            naive = datetime(2026, 11, 20, 9)
            await ratings.case_status(_record("B2", completed_at=naive), actor="ivr", now=START)
        with pytest.raises(InvalidInput):
            await ratings.case_status(_record("B3", phone="12ab"), actor="ivr", now=START)
    assert sql == SqlCount(0, 0)  # refused before reaching the database at all
    assert await _count(services, Case) == 0
