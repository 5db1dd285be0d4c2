"""The batch statements of rating/db/bulk_sql.py store what SQLAlchemy's own statements store.

Bad inputs tried: an over-long value for a varchar(64) column (refused on PostgreSQL, never cut;
SQLite keeps it whole), a naive timestamp (refused before the driver sees it), a None in a JSON
column (JSON null, as the ORM writes it), Chinese text and quotes in strings and JSON, an empty
list to match, a list with a value that matches nothing, and on SQLite more placeholders than
one statement may hold (the rows are split, the ids still come back in order), and 200 ids
looked up beside a status (SQLite must find them by id, not read every row in that status).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, StatementError

from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.cases.models import Case
from rating.cases.registration import ServiceRecord
from rating.cases.repository import Repository
from rating.db.bulk_sql import SQLITE_MAX_VARIABLES, insert_values, matching, unindexed
from rating.outbox.models import OutboxItem
from rating.sweeps.claims import DefaultRatingRepository
from sms.storage.inbox import InboxRepository
from tests.conftest import START

AUDIT = cast(Table, AuditEntry.__table__)
COLUMNS = ["at", "actor", "action", "entity", "entity_id", "data"]


def _row(i: int, **changes: Any) -> list[Any]:
    values = {
        "at": START + timedelta(seconds=i),
        "actor": f"测试'{i}\"",
        "action": "rating.adopted",
        "entity": "evaluation",
        "entity_id": f"C{i}",
        "data": {"level": i, "备注": "不满意", "quote": "'\""},
    }
    values.update(changes)
    return [values[c] for c in COLUMNS]


async def _stored(services: Services) -> list[tuple[Any, ...]]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AUDIT.c.id, *(AUDIT.c[c] for c in COLUMNS)).order_by(AUDIT.c.id)
        )
        return [tuple(row) for row in rows]


async def test_rows_come_back_as_given_with_ids_in_row_order(services: Services) -> None:
    other_zone = timezone(timedelta(hours=8))
    rows = [_row(i) for i in range(30)]
    rows[3] = _row(3, at=datetime(2026, 11, 20, 17, 0, tzinfo=other_zone))
    rows[4] = _row(4, data=None)
    async with services.sessions() as session:
        ids = await insert_values(session, AUDIT, COLUMNS, rows, returning_ids=True)
        await session.commit()
    assert ids == sorted(ids) and len(set(ids)) == 30
    stored = await _stored(services)
    assert [row[0] for row in stored] == ids
    for row, given in zip(stored, rows, strict=True):
        assert row[1] == given[0].astimezone(UTC)  # the same instant, read back in UTC
        assert row[1].tzinfo is not None
        assert list(row[2:6]) == given[1:5]
        assert row[6] == given[5]  # JSON, Chinese and quotes intact; None is JSON null


async def test_a_naive_timestamp_is_refused_and_nothing_is_written(services: Services) -> None:
    rows = [_row(1), _row(2, at=datetime(2026, 11, 20, 9, 0))]
    async with services.sessions() as session:
        with pytest.raises((ValueError, StatementError), match="naive"):
            await insert_values(session, AUDIT, COLUMNS, rows, returning_ids=False)
    assert await _stored(services) == []


async def test_an_over_long_value_is_never_cut(services: Services) -> None:
    long_id = "X" * 70  # audit_log.entity_id is varchar(64)
    async with services.sessions() as session:
        if services.engine.dialect.name == "postgresql":
            with pytest.raises(DBAPIError, match="too long"):
                await insert_values(
                    session, AUDIT, COLUMNS, [_row(1, entity_id=long_id)], returning_ids=True
                )
            return
        await insert_values(
            session, AUDIT, COLUMNS, [_row(1, entity_id=long_id)], returning_ids=True
        )
        await session.commit()
    assert (await _stored(services))[0][5] == long_id  # SQLite keeps it whole


async def test_more_rows_than_one_sqlite_statement_holds(services: Services) -> None:
    n = SQLITE_MAX_VARIABLES // len(COLUMNS) + 7  # two statements on SQLite
    rows = [_row(i) for i in range(n)]
    async with services.sessions() as session:
        ids = await insert_values(session, AUDIT, COLUMNS, rows, returning_ids=True)
        await Repository(session).insert_rows(
            AuditEntry, [dict(zip(COLUMNS, _row(i), strict=True)) for i in range(5)]
        )
        await session.commit()
    stored = await _stored(services)
    assert len(stored) == n + 5
    assert [row[5] for row in stored[:n]] == [f"C{i}" for i in range(n)]
    assert [row[0] for row in stored[:n]] == ids


async def test_a_plain_row_gets_its_columns_python_defaults(services: Services) -> None:
    row = {
        "topic": "central.rating",
        "ordering_key": "evaluation:1",
        "idempotency_key": "rating-1",
        "payload": {"case_no": "甲1"},
        "next_attempt_at": START,
        "created_at": START,
    }
    async with services.sessions() as session:
        await Repository(session).insert_rows(OutboxItem, [row])
        await session.commit()
        stored = (await session.execute(select(OutboxItem))).scalar_one()
    assert stored.attempts == 0 and stored.sent_at is None and stored.payload == {"case_no": "甲1"}


async def test_matching_one_parameter_for_any_list(services: Services) -> None:
    for case_no in ["甲-1", "B'2", "C3"]:
        record = ServiceRecord(case_no, "complaint", None, START)
        await services.ratings.register(record, actor="test", now=START)
    cases = cast(Table, Case.__table__)
    dialect = services.engine.dialect

    async def found(values: list[str]) -> set[str]:
        async with services.sessions() as session:
            query = select(cases.c.case_no).where(matching(cases.c.case_no, values, dialect))
            return set((await session.execute(query)).scalars())

    assert await found(["甲-1", "B'2", "nope"]) == {"甲-1", "B'2"}
    assert await found([]) == set()
    assert await found(["C3"]) == {"C3"}


async def _plan_of(services: Services, part: str, work: Any) -> str:
    """SQLite's plan of the statement holding `part` that `work(session)` sends."""
    sent: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if part in statement:
            sent.append((statement, params))

    event.listen(services.engine.sync_engine, "before_cursor_execute", grab)
    try:
        async with services.sessions() as session:
            await work(session)
            await session.rollback()
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", grab)
    [(statement, params)] = sent
    async with services.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        plan = await raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)  # type: ignore[union-attr]
        return " | ".join(str(row[3]) for row in await plan.fetchall())


async def test_rows_found_by_their_ids_are_not_looked_up_by_status(services: Services) -> None:
    """The default-rating sweep's re-read and the SMS answers' take of held messages find their
    rows by id; SQLite must not start from the status index (every pending or held row)."""
    if services.engine.dialect.name != "sqlite":
        return
    steps = await _plan_of(
        services,
        "WHERE evaluations.id IN",
        lambda session: DefaultRatingRepository(session).pending(list(range(1, 201))),
    )
    assert "evaluations USING INTEGER PRIMARY KEY" in steps and "ix_" not in steps, steps
    steps = await _plan_of(
        services,
        "UPDATE sms_messages",
        lambda session: InboxRepository(session).take_held(list(range(1, 201))),
    )
    assert "sms_messages USING INTEGER PRIMARY KEY" in steps and "ix_" not in steps, steps


def test_unindexed_is_the_same_comparison() -> None:
    cases = cast(Table, Case.__table__)
    for dialect in (sqlite.dialect(), postgresql.asyncpg.dialect()):  # type: ignore[attr-defined]
        text = str((unindexed(cases.c.kind) == "x").compile(dialect=dialect))
        assert "cases.kind ||" in text, text
