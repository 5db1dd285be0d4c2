"""Throw-away PostgreSQL and Redis servers for the fault tests, which stop and restart them.

One PostgreSQL cluster for the session (on a port of its own: the shared server on 5432 is
never touched), a fresh migrated database per test, and a fresh redis-server per test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from rating.db import engine as db
from tests.services import unavailable
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
    except Exception as exc:  # binaries missing, or the server would not start
        server.close()
        unavailable("a throw-away PostgreSQL", str(exc))
    yield server
    server.close()


@pytest.fixture
async def fault_db(fault_postgres: ThrowawayPostgres) -> AsyncIterator[str]:
    """A migrated database of its own on the throw-away server (started if a test left it
    stopped); its SQLAlchemy URL."""
    if fault_postgres.executor is None or not fault_postgres.executor.running():
        fault_postgres.start()
    name = f"fault_{uuid.uuid4().hex[:10]}"
    dsn = f"postgresql://postgres@127.0.0.1:{fault_postgres.port}/postgres"
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{fault_postgres.port}/{name}"
    await db.upgrade(url)
    yield url
    if not fault_postgres.executor or not fault_postgres.executor.running():
        fault_postgres.start()
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def fault_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(base=tmp_path / "redis")
    server.base.mkdir()
    try:
        server.start()
    except Exception as exc:
        unavailable("a throw-away redis-server", str(exc))
    yield server
    server.close()
