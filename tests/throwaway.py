"""Throw-away PostgreSQL and Redis server processes, started by the tests themselves.

Built on `pytest-postgresql` (its `PostgreSQLExecutor`, around `pg_ctl`) and `pytest-redis`
(its `RedisExecutor`), with the Debian binaries: `/usr/lib/postgresql/<version>/bin` and
`redis-server`. Used when no server is running (tests/services.py) and by the fault tests
(tests/faults/), which stop, kill and restart them; the shared servers on 5432 and 6379 are
never touched.

PostgreSQL refuses to run as root: under root, `pg_ctl` is run through a wrapper that calls it
as the `postgres` system user (`runuser`), and the data directory is handed to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_postgresql.executors.proc import PostgreSQLExecutor
from pytest_redis.executor.process import RedisExecutor

POSTGRES_SYSTEM_USER = "postgres"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a test or bench starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_ctl_path() -> str | None:
    """The newest Debian `pg_ctl`, or the one on PATH; None when PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major, reverse=True)
    return found[0] if found else shutil.which("pg_ctl")


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _hand_over(path: Path) -> None:
    """Under root: the directory belongs to the postgres system user, who runs the server."""
    if _as_root():
        shutil.chown(path, POSTGRES_SYSTEM_USER, POSTGRES_SYSTEM_USER)


@dataclass
class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary directory, on a free port of 127.0.0.1."""

    port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pingjia-pg-")))
    executor: PostgreSQLExecutor | None = None

    def start(self) -> ThrowawayPostgres:
        if self.executor is None:
            self.executor = self._executor()
        self.executor.start()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        """The port opens before crash recovery ends: wait for `pg_isready` to say yes."""
        pg_ctl = pg_ctl_path()
        ready = str(Path(pg_ctl).with_name("pg_isready")) if pg_ctl else "pg_isready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [ready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL on port {self.port} not ready after {timeout} s")

    def _executor(self) -> PostgreSQLExecutor:
        pg_ctl = pg_ctl_path()
        if pg_ctl is None:
            raise FileNotFoundError("pg_ctl (PostgreSQL server binaries) is not installed")
        self.base.chmod(0o755)
        _hand_over(self.base)
        if _as_root():
            wrapper = self.base / "pg_ctl"
            wrapper.write_text(
                f'#!/bin/sh\nexec runuser -u {POSTGRES_SYSTEM_USER} -- "{pg_ctl}" "$@"\n'
            )
            wrapper.chmod(0o755)
            pg_ctl = str(wrapper)
        return PostgreSQLExecutor(
            executable=pg_ctl,
            host="127.0.0.1",
            port=self.port,
            datadir=str(self.base / "data"),
            unixsocketdir=str(self.base),
            logfile=str(self.base / "postgres.log"),
            startparams="-w",
            dbname="postgres",
            user="postgres",
            timeout=60,
            # Fast enough for tests: no fsync, a short checkpoint, no restart delay.
            postgres_options="-c fsync=off -c full_page_writes=off -c max_connections=200",
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, the server stops cleanly."""
        if self.executor is not None and self.executor.running():
            self.executor.stop()

    def kill(self) -> None:
        """An immediate stop: every process ends at once, as in a crash (the next start
        recovers from the WAL)."""
        if self.executor is None or not self.executor.running():
            return
        subprocess.run(
            [self.executor.executable, "stop", "-D", self.executor.datadir, "-m", "immediate"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.executor._clear_process()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class ThrowawayRedis:
    """One redis-server on a free port of 127.0.0.1, without persistence."""

    port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pingjia-redis-")))
    executor: RedisExecutor | None = None

    def start(self) -> ThrowawayRedis:
        if self.executor is None:
            server = redis_server_path()
            if server is None:
                raise FileNotFoundError("redis-server is not installed")
            self.executor = RedisExecutor(
                executable=server,
                databases=16,
                redis_timeout=30,
                loglevel="warning",
                host="127.0.0.1",
                port=self.port,
                datadir=self.base,
                startup_timeout=30,
            )
        self.executor.start()
        return self

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.executor is not None and self.executor.running():
            self.executor.stop()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
