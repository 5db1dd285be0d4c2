"""Engine, sessions and schema migrations (Alembic, run in-process)."""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    """Build the async engine; SQLite gets WAL, foreign keys and a busy timeout.

    PostgreSQL keeps `pool_size` connections and opens no overflow ones: an overflow
    connection is closed again at check-in, so under a burst every transaction paid for a new
    connection and a new server process (bench/sms_bench.py counted 1,530 connects for 300
    replies); beyond the pool a transaction waits for a connection instead."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
    ping_when_idle(engine)
    return engine


IDLE_PING_S = 5.0  # a pooled connection unused this long is pinged before it is handed out


def ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection at checkout only when it has sat idle for IDLE_PING_S.

    `pool_pre_ping` pings at every checkout, and on asyncpg a ping is three round trips
    (BEGIN, `;`, ROLLBACK): a single IVR rating (a status check and a write) paid six
    (bench/README.md, rate_bench: a small gain). A connection in steady use has just worked;
    one that sat idle (a quiet night, a database restarted meanwhile) is checked as before,
    and a dead one is replaced by the pool. Connections that die while in steady use fail
    their next statement; SQLAlchemy then invalidates the whole pool, and every writer here
    retries (tests/test_db_pool.py)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"pooled connection dead after idling: {exc}") from exc


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def batches_in_flight(sessions: async_sessionmaker[AsyncSession]) -> int:
    """How many group-commit batches (rating/db/batching.py) one process writes at once: two on
    a server database, whose round trips then overlap the next batch's CPU; one on SQLite,
    which has one writer, so a second transaction would only wait for its lock."""
    bind = sessions.kw.get("bind")
    return 1 if bind is None or bind.dialect.name == "sqlite" else 2


def alembic_config(url: str, metadata: MetaData | None = None) -> Config:
    """An Alembic config pointing at our migrations, for the CLI and for tests.

    `metadata` (every part's tables, pingjia/tables.py) is for comparing the models with the
    schema (autogenerate); upgrading needs none, so the domain never has to import the parts."""
    location = resources.files("rating.db") / "migrations"
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["target_metadata"] = metadata
    return config


async def upgrade(url: str, revision: str = "heads", metadata: MetaData | None = None) -> None:
    """Create or upgrade the schema to `revision` (every head: parts add their own branches)."""
    await asyncio.to_thread(command.upgrade, alembic_config(url, metadata), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
