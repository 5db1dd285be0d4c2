"""The suite starts its own PostgreSQL and Redis when none runs (tests/services.py), and uses
the servers it is given by URL as they are.

Bad inputs tried: a default URL on a port where nothing listens (a throw-away server is
started and used instead), a URL given by the environment (used as given, nothing started).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as redis

from tests import services
from tests.throwaway import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_nothing_running_starts_throwaway_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_started", {})
    monkeypatch.delenv("NO_SUCH_URL_GIVEN", raising=False)
    dead_pg = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    dead_redis = f"redis://127.0.0.1:{free_port()}/7"
    try:
        pg_url = await asyncio.to_thread(
            services._throwaway_url, "PostgreSQL", dead_pg, "NO_SUCH_URL_GIVEN"
        )
        redis_url = services._throwaway_url("Redis", dead_redis, "NO_SUCH_URL_GIVEN")
        assert pg_url != dead_pg and redis_url != dead_redis
        assert redis_url.endswith("/7")  # the database number asked for is kept
        conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        client = redis.from_url(redis_url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
        # Asked again, the same servers: one per session.
        assert services._throwaway_url("Redis", dead_redis, "NO_SUCH_URL_GIVEN") == redis_url
    finally:
        for started in services._started_servers():
            started.close()


def test_a_given_url_is_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_started", {})
    given = f"redis://127.0.0.1:{free_port()}/3"
    monkeypatch.setenv("PINGJIA_TEST_REDIS_URL", given)
    assert services._throwaway_url("Redis", given, "PINGJIA_TEST_REDIS_URL") == given
    assert services._started == {}
