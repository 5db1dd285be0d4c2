"""Reaching the local PostgreSQL and Redis for service-backed tests.

In CI (`CI=true`) a missing service fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "PINGJIA_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PINGJIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(service: str, reason: str) -> None:
    """Fail in CI, skip elsewhere: CI must never pass by skipping a service test."""
    message = f"{service} is not reachable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI must run the service-backed tests)")
    pytest.skip(message)


# The Debian package each system tool of the suite comes in (.ci/run installs them).
TOOL_PACKAGES = {
    "espeak-ng": "espeak-ng",
    "ffmpeg": "ffmpeg",
    "sox": "sox",
    "chromium": "chromium",
}


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test in CI and skips it elsewhere, naming
    the package to install."""
    path = shutil.which(name)
    if path is None:
        package = TOOL_PACKAGES.get(name, name)
        unavailable(name, f"`{name}` is not on PATH (apt-get install {package})")
        raise AssertionError("unreachable")  # unavailable() always raises
    return path


def _port_open(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=1):
            return None
    except OSError as exc:
        return str(exc)


def postgres_database() -> Iterator[str]:
    """Create a throw-away database on the local server; yield its URL; drop it."""
    import asyncpg
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_ADMIN_URL)
    problem = _port_open(admin.host or "127.0.0.1", admin.port or 5432)
    if problem:
        unavailable("PostgreSQL", problem)
    name = f"pingjia_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:
        # In a thread of its own: this may be reached from inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, execute(sql)).result()

    try:
        run(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", str(exc))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def redis_client_url() -> AsyncIterator[str]:
    """Yield the URL of a flushed Redis database for one test."""
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        await client.aclose()
        unavailable("Redis", str(exc))
    await client.flushdb()
    try:
        yield REDIS_URL
    finally:
        await client.flushdb()
        await client.aclose()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a test or bench starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
