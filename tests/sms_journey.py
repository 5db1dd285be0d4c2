"""The end-to-end journeys' fixtures, shared by the tests that run through every registered
SMS provider (tests/test_sms_providers*.py): a city built on the driver's provider and fake
(tests/sms_drivers.py), its HTTP app, and the steps the journeys share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.state import MemoryState
from sms.storage.models import SmsInbound
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.sms_drivers import DRIVERS, Driver
from tests.sms_support import KEY, PUBLIC, register

CASE = "C2026112000001"


@pytest.fixture(params=list(DRIVERS))
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    made = DRIVERS[request.param]()
    await made.start()
    yield made
    await made.stop()


@pytest.fixture
async def city(driver: Driver, tmp_path: object, clock: FakeClock) -> AsyncIterator[Services]:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/pingjia.db",
        tmp_path,
        sms_provider=driver.name,
        sms_callback_key=KEY,
        public_url=PUBLIC,
        **driver.app_settings(),
    )
    built = await build_services(
        settings, clock=clock, state=MemoryState(), sms_settings=driver.settings()
    )
    try:
        assert built.sms.provider.name == driver.name
        await driver.started(built)
        yield built
    finally:
        await built.close()


@pytest.fixture
async def client(aiohttp_client: Any, city: Services) -> TestClient:
    return await aiohttp_client(build_app(city))  # type: ignore[no-any-return]


async def invited(city: Services, clock: FakeClock, driver: Driver) -> None:
    await register(city)
    clock.advance(minutes=3)
    assert await city.sms.send_due_invitations(clock()) == 1
    assert driver.sent(city) == 1


async def replied(city: Services, client: TestClient, driver: Driver, text: str, rid: str) -> None:
    await driver.reply(client, text, rid)
    await city.sms.inbox.intake.drain()


async def inbound_rows(city: Services) -> int:
    async with city.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(SmsInbound)) or 0)
