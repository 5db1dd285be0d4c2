"""PostgreSQL connections that die in the pool (rating/db/engine.py: a ping only after idling).

Bad inputs tried: every pooled connection killed by the server (pg_terminate_backend, as a
database restart does) after the pool sat idle, and while it was in steady use.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rating.db import engine as db

pytestmark = pytest.mark.postgres


async def _kill_pool(url: str, engine: AsyncEngine) -> int:
    """Terminate every server process holding one of `engine`'s connections."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the pool holds at least this one
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        name = engine.url.database
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await admin.close()
    return len(killed)


async def _one(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


async def test_a_connection_that_died_while_idle_is_replaced_unseen(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # every connection counts as idle
    engine = db.create_engine(postgres_url, pool_size=2)
    try:
        assert await _kill_pool(postgres_url, engine) >= 1
        assert await _one(engine) == 1  # pinged, found dead, replaced: the caller sees nothing
    finally:
        await engine.dispose()


async def test_a_connection_that_died_in_steady_use_fails_once_then_the_pool_recovers(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_S", 3600.0)  # just used: no ping
    engine = db.create_engine(postgres_url, pool_size=2)
    try:
        assert await _kill_pool(postgres_url, engine) >= 1
        with pytest.raises(DBAPIError) as failed:
            await _one(engine)
        assert failed.value.connection_invalidated
        assert await _one(engine) == 1  # the pool was invalidated: a new connection
    finally:
        await engine.dispose()
