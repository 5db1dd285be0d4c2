"""The extension code (扩展码) a reply was sent to, through every provider that has one and its
fake: the reply names the evaluation whose id is the extension, over the number's newer
pending one, whether the webhook's own process handles it or the `sms_inbox` sweep does
(queued replies, or a handler that died). The extension is a column of `sms_inbound`, so the
sweep reads it back as the provider gave it: an Aliyun `dest_code`, a Tencent `extend`, the
SMPP destination's digits after our source address, the console's number + code.

Bad inputs tried: an extension naming another number's case (falls back to the number's own
latest), an extension naming no evaluation, a Twilio reply (no extensions: skipped, says why).
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.composition import Services
from sms.storage.models import SmsInbound
from tests.fakes.clock import FakeClock
from tests.sms_drivers import Driver
from tests.sms_journey import city, client, driver
from tests.sms_support import OTHER_PHONE, adopted, register

__all__ = ["city", "client", "driver"]  # fixtures of tests/sms_journey.py used here

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDKs' aiohttp use


async def stored(city: Services) -> list[tuple[str | None, str | None]]:
    async with city.sessions() as session:
        rows = (await session.execute(select(SmsInbound).order_by(SmsInbound.id))).scalars()
        return [(row.to_number, row.extension) for row in rows]


async def pending(city: Services, case_no: str) -> bool:
    return (await city.ratings.evaluation(case_no)).status == "pending"


@pytest.mark.parametrize("queued", [False, True], ids=["inline", "sweep"])
async def test_the_extension_names_the_evaluation_it_was_sent_for(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient, queued: bool
) -> None:
    if driver.no_extensions:
        pytest.skip(driver.no_extensions)
    older = await register(city, "C1")
    clock.advance(seconds=10)
    await register(city, "C2")  # newer: a reply without an extension would rate this one
    intake = city.sms.inbox.intake
    intake.queued = queued
    await driver.reply(client, "4 电话一直占线", "R1", extension=str(older.id))
    if queued:  # stored only; the sms_inbox sweep handles it from the row
        await intake.drain()
        assert await pending(city, "C1") and await pending(city, "C2")
        assert await intake.resume_stale(clock()) == 1
    await intake.drain()
    rating = await adopted(city, "C1")
    assert rating is not None and (rating.level, rating.reason) == (4, "电话一直占线")
    assert await pending(city, "C2")
    [(_, extension)] = await stored(city)
    assert extension == str(older.id)
    # Without an extension the number's latest pending evaluation is rated, as always.
    await driver.reply(client, "1", "R2")
    if queued:
        assert await intake.resume_stale(clock()) == 1
    await intake.drain()
    assert (await adopted(city, "C2")) is not None


async def test_an_extension_rates_only_the_senders_own_case(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient
) -> None:
    if driver.no_extensions:
        pytest.skip(driver.no_extensions)
    others = await register(city, "C9", phone=OTHER_PHONE)
    await register(city, "C1")
    intake = city.sms.inbox.intake
    intake.queued = True
    await driver.reply(client, "2", "R1", extension=str(others.id))
    await driver.reply(client, "3", "R2", extension="99999")  # names no evaluation
    assert await intake.resume_stale(clock()) == 2
    await intake.drain()
    assert await pending(city, "C9")  # another number's case: not through its extension
    rating = await adopted(city, "C1")  # the sender's own latest pending case instead
    assert rating is not None and rating.level == 2
    assert [extension for _, extension in await stored(city)] == [str(others.id), "99999"]
