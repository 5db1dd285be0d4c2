"""Migration 0007_call_dial_status on SQLite and PostgreSQL: down and up again, matching the
models. Faults tried: a downgrade with a call-back row present (the column goes, the row stays),
and an upgrade over a row written before the column existed (it reads as null: not known).
"""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from ivr.models import OutboundCall
from pingjia.composition import Services
from rating.db import engine as db
from rating.db.base import Base
from tests.test_ivr_ami import CASE, register


async def columns(services: Services) -> set[str]:
    async with services.engine.connect() as conn:
        found = await conn.run_sync(lambda sync: inspect(sync).get_columns("calls"))
    return {c["name"] for c in found}


async def test_dial_status_migration_goes_both_ways(services: Services) -> None:
    await register(services)
    case = await services.ratings.evaluation(CASE)
    now = services.clock()
    async with services.sessions() as session:
        session.add(
            OutboundCall(
                case_id=case.case_id,
                kind="callback",
                action_id="pingjia-callback-00000000000000aa",
                status="answered",
                requested_by="agent:a",
                dial_status="ANSWER",
                requested_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    config = db.alembic_config(services.settings.database_url)
    await services.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0007_call_dial_status-1")
    await services.engine.dispose()
    assert "dial_status" not in await columns(services)
    async with services.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM calls"))).scalar() == 1
    await services.engine.dispose()
    await asyncio.to_thread(command.upgrade, config, "heads")
    await services.engine.dispose()
    assert "dial_status" in await columns(services)
    async with services.sessions() as session:
        [call] = (await session.execute(select(OutboundCall))).scalars().all()
    assert (call.status, call.dial_status) == ("answered", None)
    async with services.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert [d for d in diff if "calls" in repr(d)] == []
