"""`pingjia serve`'s start and stop as the aiohttp app's cleanup contexts (pingjia/lifecycle.py).

Bad inputs tried: a FastAGI port another process already holds (the start fails and what was
opened is closed), and profiles whose prompts are missing are covered by test_ivr_prompts.py.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import Simulator
from asterisk_sim.softphone import prompt_sounds
from pingjia.composition import Services, build_services
from pingjia.lifecycle import AGI, BACKGROUND, serving_app
from prompts.catalog import AUDIO
from rating.state import MemoryState
from tests.conftest import make_settings


async def _services(tmp_path: Path, **settings: object) -> Services:
    url = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    return await build_services(
        make_settings(url, tmp_path, **{"agi_port": 0, **settings}), state=MemoryState()
    )


def _noting(
    order: list[str], name: str, close: Callable[..., Awaitable[None]]
) -> Callable[..., Awaitable[None]]:
    async def noted(*args: object, **kwargs: object) -> None:
        order.append(name)
        await close(*args, **kwargs)

    return noted


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    built = await _services(tmp_path)
    yield built  # closed by the app under test


async def test_serve_starts_fastagi_and_sweeps_and_stops_them_in_order(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = serving_app(services)
    runner = web.AppRunner(app)
    await runner.setup()
    order: list[str] = []
    try:
        agi, jobs = app[AGI], app[BACKGROUND]
        assert jobs.scheduler._aps is not None and jobs.scheduler._aps.running
        result = await Simulator(ScriptedCaller([Key("2")]), prompt_sounds(AUDIO)).call(
            "127.0.0.1", agi.port, "rating?case=L1"
        )
        assert result.closed_by_server
        port = agi.port
        monkeypatch.setattr(jobs, "close", _noting(order, "sweeps", jobs.close))
        monkeypatch.setattr(agi, "close", _noting(order, "agi", agi.close))
        monkeypatch.setattr(services, "close", _noting(order, "services", services.close))
    finally:
        await runner.cleanup()
    # Sweeps stop first, FastAGI drains its calls' writes, the database closes last.
    assert order == ["sweeps", "agi", "services"]
    assert not jobs.scheduler._aps.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_sweeps_off_start_no_scheduler(tmp_path: Path) -> None:
    services = await _services(tmp_path, sweeps=False)
    runner = web.AppRunner(serving_app(services))
    await runner.setup()
    try:
        assert runner.app[BACKGROUND].scheduler._aps is None
    finally:
        await runner.cleanup()


async def test_a_start_that_fails_closes_what_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    services = await _services(tmp_path, agi_port=taken.getsockname()[1])
    closed: list[str] = []
    monkeypatch.setattr(services, "close", _noting(closed, "services", services.close))
    runner = web.AppRunner(serving_app(services))
    try:
        with pytest.raises(OSError):
            await runner.setup()
    finally:
        await runner.cleanup()
        taken.close()
    assert closed == ["services"]
    assert BACKGROUND not in runner.app  # the sweeps never started
