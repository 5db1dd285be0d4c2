"""Schemathesis over /api/openapi.json against a real `pingjia` HTTP server, once per role.

The server runs in a thread of its own (its own event loop), on SQLite or PostgreSQL, with a
case, a rating and a ticket in place so the paths that need one find one. Every check
schemathesis has runs (`--checks all`); a failure is reported with the request that caused it.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from pingjia.app import build_app
from pingjia.auth import ROLES
from pingjia.composition import build_services
from pingjia.settings import Settings
from rating.cases.registration import ServiceRecord
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from tests.fakes.ami import FakeAmi

AGENCY = "台山市市场监督管理局"
CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass
class Server:
    url: str
    tokens: dict[str, str] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(services: Any) -> dict[str, str]:
    """A token per role, and a case rated 不满意 (so there is a ticket to find)."""
    now = services.clock()
    tokens = {
        role: await services.tokens.create(
            role, f"fuzz-{role}", now, agency=AGENCY if role == "agency" else None
        )
        for role in ROLES
    }
    record = ServiceRecord(
        case_no="C2026112000001",
        kind="complaint",
        phone="13812345678",
        completed_at=now - timedelta(hours=1),
        agency=AGENCY,
    )
    await services.ratings.register(record, actor="fuzz", now=now)
    await services.ratings.rate(
        RatingRequest("C2026112000001", 4, "api", tags=["staff_passive"], reason="慢"),
        actor="fuzz",
        now=now,
    )
    return tokens


@contextmanager
def running_server(settings: Settings) -> Iterator[Server]:
    """`pingjia`'s HTTP side on a free port, in a thread; stopped on exit."""
    port = _free_port()
    ready = threading.Event()
    server = Server(f"http://127.0.0.1:{port}")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        ami = await FakeAmi().start()  # call-backs reach a (fake) Asterisk, not a 503
        settings_with_ami = settings.model_copy(update={"ami_url": ami.url})
        services = await build_services(settings_with_ami, state=MemoryState())
        try:
            server.tokens = await _seed(services)
            runner = web.AppRunner(build_app(services))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            ready.set()
            await stop.wait()
            await runner.cleanup()
        finally:
            await services.close()
            await ami.stop()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(60)
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def _auth(token: str | None) -> str:
    """The config section that gives schemathesis the token (none: every call without one)."""
    if token is None:
        return ""
    return f'\n[auth.openapi.bearer]\nbearer = "{token}"\n'


@dataclass(frozen=True)
class FuzzRun:
    """One `st run` as one caller: its exit code, its report and what the summary counts."""

    caller: str
    exit_code: int
    output: str
    seconds: float

    def _count(self, pattern: str) -> int:
        found = re.search(pattern, self.output)
        return int(found.group(1)) if found else 0

    @property
    def operations(self) -> int:
        return self._count(r"Tested: (\d+)")

    @property
    def generated(self) -> int:
        """Test cases generated (each one request, stateful scenarios a few)."""
        return self._count(r"(\d+) generated")

    @property
    def failures(self) -> int:
        return self._count(r"(\d+) unique failures?")

    def problems(self) -> list[str]:
        if self.exit_code == 0:
            return []
        return [f"as {self.caller} (exit {self.exit_code}):\n{self.output}"]


def run(
    server: Server, role: str | None, examples: int, seed: int = 1, phases: str = ""
) -> FuzzRun:
    """Every check over every operation as `role` (None: no token)."""
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--generation-deterministic",
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
    ]
    if phases:
        command += ["--phases", phases]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(root)}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:  # st leaves its cache in its folder
        # The token as the document's `bearer` scheme (not a fixed -H header), so schemathesis
        # knows it for what it is and can leave it out to check the 401.
        config = Path(folder) / "schemathesis.toml"
        config.write_text(CONFIG.read_text() + _auth(server.tokens[role] if role else None))
        command[command.index(str(CONFIG))] = str(config)
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=max(600, 8 * examples),  # 200 examples: about 4 minutes on a quiet machine
            check=False,
            cwd=folder,
            env=env,
        )
    return FuzzRun(
        role or "no token",
        done.returncode,
        done.stdout + done.stderr[-2000:],
        time.monotonic() - started,
    )


def fuzz(
    server: Server, role: str | None, examples: int, seed: int = 1, phases: str = ""
) -> list[str]:
    """Every check over every operation as `role` (None: no token); the failures reported."""
    return run(server, role, examples, seed, phases).problems()
