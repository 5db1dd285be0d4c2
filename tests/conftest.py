"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests import regulations
from tests import services as service_backends

# Fixtures the SMS, alert and webhook tests share (the fake Twilio and services wired to it).
pytest_plugins = ["tests.sms_support"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every `article` mark names a listed article of a known city (tests/regulations.py)."""
    regulations.check_items(items)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (see tests/services.py)."""
    yield from service_backends.postgres_database()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A flushed Redis database for one test (see tests/services.py)."""
    async for url in service_backends.redis_client_url():
        yield url


# --- the service, built as `pingjia serve` builds it, on SQLite and on PostgreSQL -------------

import asyncio  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import text  # noqa: E402

from pingjia.composition import Services, build_services  # noqa: E402
from pingjia.settings import Settings  # noqa: E402
from rating.db import engine as db  # noqa: E402
from rating.db.base import Base  # noqa: E402
from rating.state import MemoryState  # noqa: E402
from tests.fakes.ami import FakeAmi  # noqa: E402
from tests.fakes.clock import FakeClock  # noqa: E402

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_migrated: set[str] = set()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def make_settings(database_url: str, tmp_path: object, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": "test-secret-key",
        "data_dir": str(tmp_path),
        "profile": "taishan",
        "redis_url": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def _clean_postgres(url: str) -> None:
    if url not in _migrated:
        await db.upgrade(url)
        _migrated.add(url)
    engine = db.create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The same tests on SQLite and on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/pingjia.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def services(
    database_url: str, tmp_path: object, clock: FakeClock
) -> AsyncIterator[Services]:
    if database_url.startswith("postgresql"):
        await _clean_postgres(database_url)
        migrate = False
    else:
        migrate = True
    built = await build_services(
        make_settings(database_url, tmp_path), migrate=migrate, clock=clock, state=MemoryState()
    )
    try:
        yield built
    finally:
        await built.close()
        await asyncio.sleep(0)


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    """A fake Asterisk Manager Interface on a free port (tests/fakes/ami.py)."""
    fake = await FakeAmi().start()
    try:
        yield fake
    finally:
        await fake.stop()
