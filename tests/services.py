"""Reaching the local PostgreSQL and Redis for service-backed tests.

A URL given (`PINGJIA_TEST_POSTGRES_URL`, `PINGJIA_TEST_REDIS_URL`) is used as it is. Without
one, the server on the default port is used when it runs; when it does not, the suite starts a
throw-away server of its own (tests/throwaway.py, from the installed binaries) for the session.
In CI (`CI=true`) a service still missing fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.throwaway import ThrowawayPostgres, ThrowawayRedis
from tests.throwaway import free_port as free_port  # where the tests and benches look for it

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
POSTGRES_ADMIN_URL = os.environ.get("PINGJIA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
REDIS_URL = os.environ.get("PINGJIA_TEST_REDIS_URL", DEFAULT_REDIS_URL)
_started: dict[str, str] = {}  # service → URL of the throw-away server this process started
_servers: list[ThrowawayPostgres | ThrowawayRedis] = []  # stopped at exit


def _started_servers() -> list[ThrowawayPostgres | ThrowawayRedis]:
    return list(_servers)


def _throwaway_url(service: str, default_url: str, env: str) -> str:
    """The default URL when its server runs or a URL was given; else a throw-away server's."""
    if os.environ.get(env) or service in _started:
        return _started.get(service, default_url)
    parsed = urlsplit(default_url)
    if _port_open(parsed.hostname or "127.0.0.1", parsed.port or 0) is None:
        return default_url
    try:
        if service == "PostgreSQL":
            pg = ThrowawayPostgres()
            _servers.append(pg)
            atexit.register(pg.close)
            _started[service] = pg.start().url
        else:
            redis_server = ThrowawayRedis()
            _servers.append(redis_server)
            atexit.register(redis_server.close)
            _started[service] = redis_server.start().url(int(parsed.path.strip("/") or 0))
    except Exception as exc:
        # Not installed, or it would not start: the caller reports the default as unreachable.
        _started[service] = default_url
        print(f"could not start a throw-away {service}: {exc}")
    return _started[service]


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

    admin = make_url(_throwaway_url("PostgreSQL", POSTGRES_ADMIN_URL, "PINGJIA_TEST_POSTGRES_URL"))
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

    url = _throwaway_url("Redis", REDIS_URL, "PINGJIA_TEST_REDIS_URL")
    client = redis.from_url(url)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        await client.aclose()
        unavailable("Redis", str(exc))
    await client.flushdb()
    try:
        yield url
    finally:
        await client.flushdb()
        await client.aclose()
