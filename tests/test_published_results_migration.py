"""Migration 0008_published_results on SQLite and PostgreSQL: down and up again, matching
the models. Faults tried: a downgrade with a published row present (the table goes, the other
parts' tables and rows stay), and an upgrade after it (an empty table: nothing is public).
"""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from pingjia.composition import Services
from rating.cases.registration import ServiceRecord
from rating.db import engine as db
from rating.db.base import Base
from rating.stats.models import PublishedMonth


async def tables(services: Services) -> set[str]:
    async with services.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_published_results_migration_goes_both_ways(services: Services) -> None:
    now = services.clock()
    await services.ratings.register(
        ServiceRecord(case_no="M1", kind="complaint", phone=None, completed_at=now, agency="甲局"),
        actor="test",
        now=now,
    )
    async with services.sessions() as session:
        session.add(
            PublishedMonth(agency="甲局", month="2026-11", published_by="b", published_at=now)
        )
        await session.commit()
    config = db.alembic_config(services.settings.database_url)
    await services.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0008_published_results-1")
    await services.engine.dispose()
    assert "published_results" not in await tables(services)
    async with services.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM cases"))).scalar() == 1
    await services.engine.dispose()
    await asyncio.to_thread(command.upgrade, config, "heads")
    await services.engine.dispose()
    assert "published_results" in await tables(services)
    async with services.sessions() as session:
        assert (await session.execute(select(PublishedMonth))).scalars().all() == []
    async with services.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert [d for d in diff if "published_results" in repr(d)] == []
