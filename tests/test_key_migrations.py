"""Issue 16's migrations on SQLite and PostgreSQL: down and up again, matching the models.

Faults tried: a downgrade with rows present (the table or column goes, the other rows stay),
an upgrade over rows written before the revision.
"""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pingjia.composition import Services
from rating.access.idempotency import IdempotencyKeys
from rating.db import engine as db
from rating.db.base import Base


async def tables(services: Services) -> dict[str, set[str]]:
    async with services.engine.connect() as conn:

        def read(sync: object) -> dict[str, set[str]]:
            found = inspect(sync)
            return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}

        return await conn.run_sync(read)


async def migrate(services: Services, verb: str, target: str) -> None:
    config = db.alembic_config(services.settings.database_url)
    await services.engine.dispose()
    await asyncio.to_thread(getattr(command, verb), config, target)
    await services.engine.dispose()


async def no_drift(services: Services, table: str) -> None:
    async with services.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert [d for d in diff if table in repr(d)] == []


async def test_idempotency_keys_migration_goes_both_ways(services: Services) -> None:
    keys = IdempotencyKeys(services.sessions)
    assert await keys.claim(
        "k-1", "POST /api/v1/ratings", {"level": 1}, "agent:a", services.clock()
    )
    await migrate(services, "downgrade", "0008_idempotency_keys-1")
    assert "idempotency_keys" not in await tables(services)
    await migrate(services, "upgrade", "heads")
    assert "idempotency_keys" in await tables(services)
    await no_drift(services, "idempotency_keys")
    # A fresh table: the key is new again (the ratings keep their own source_ref replay).
    assert await keys.claim(
        "k-1", "POST /api/v1/ratings", {"level": 2}, "agent:a", services.clock()
    )
