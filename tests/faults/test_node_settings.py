"""PINGJIA_SWEEP_EVERY_S and PINGJIA_LEASE_S reach every sweep and every claim a node makes.

Bad inputs tried: 0 and negative seconds (refused at load), unset (each keeps its own).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.outbox import OutboxWorker
from bridge.ticket_system import TicketTransfer
from pingjia.background import build_background
from pingjia.composition import build_services
from rating.state import MemoryState
from tests.conftest import make_settings


async def test_sweep_interval_and_lease_reach_every_sweep(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/n.db",
        tmp_path,
        sweep_every_s=1,
        lease_s=4,
        central_store_url="http://127.0.0.1:9",
        ticket_system_url="http://127.0.0.1:9",
    )
    services = await build_services(settings, state=MemoryState())
    background = build_background(services)
    try:
        sweeps = background.scheduler.sweeps
        assert {s.every for s in sweeps if s.cron is None} == {timedelta(seconds=1)}
        assert [s.name for s in sweeps if s.cron is not None] == ["stats_rollup"]
        assert background.outbox is not None and background.transfer is not None
        assert background.outbox.lease == background.transfer.lease == timedelta(seconds=4)
        assert background.transfer.timeout == 2  # a post fits in half the lease
    finally:
        await background.close()
        await services.close()


async def test_unset_each_keeps_its_own(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/n.db", tmp_path, central_store_url="http://127.0.0.1:9"
    )
    services = await build_services(settings, state=MemoryState())
    background = build_background(services)
    try:
        assert background.outbox is not None
        assert background.outbox.lease == OutboxWorker.lease
        assert TicketTransfer.lease == timedelta(minutes=2)
        outbox = next(s for s in background.scheduler.sweeps if s.name == "outbox")
        assert outbox.every == timedelta(seconds=5)
    finally:
        await background.close()
        await services.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_zero_or_negative_seconds_are_refused(tmp_path: Path, bad: float) -> None:
    with pytest.raises(ValidationError):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, sweep_every_s=bad)
    with pytest.raises(ValidationError):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, lease_s=bad)
