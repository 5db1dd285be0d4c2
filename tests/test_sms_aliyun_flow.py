"""End to end through Aliyun: services built with PINGJIA_SMS_PROVIDER=aliyun (the registry)
send through the real SDK into the fake Aliyun endpoint, and Aliyun's pushes reach the app's
callbacks (with the key): invitation, 24-hour reminder, the reply `５ 态度太差`, `TD`, delivery
receipts, a repeated push, a push without the key. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.policy.profile import TEMPLATE_NAMES
from rating.state import MemoryState
from sms.providers.aliyun import AliyunSmsSettings
from tests.conftest import _clean_postgres, make_settings
from tests.fakes.aliyun_sms import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    FakeAliyunSms,
    report_item,
    up_item,
)
from tests.fakes.clock import FakeClock
from tests.sms_support import KEY, OTHER_PHONE, PHONE, PUBLIC, adopted, messages, register
from tests.sms_support import tickets as all_tickets

CODES = {name: f"SMS_{460775000 + n}" for n, name in enumerate(TEMPLATE_NAMES)}
ClientMaker = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
ACCEPTED = {"code": 0, "msg": "接收成功"}


@dataclass
class Aliyun:
    fake: FakeAliyunSms
    client: TestClient[web.Request, web.Application]
    services: Services

    def sent(self) -> list[tuple[str, str, dict[str, str]]]:
        """(number, template code, params) of each SendSms the fake took."""
        return [
            (
                r.params["PhoneNumbers"],
                r.params["TemplateCode"],
                json.loads(r.params.get("TemplateParam", "{}")),
            )
            for r in self.fake.requests
        ]

    async def push(self, path: str, items: list[dict[str, object]]) -> None:
        response = await self.client.post(f"{path}?key={KEY}", json=items)
        assert response.status == 200 and await response.json() == ACCEPTED
        await self.services.sms.inbox.intake.drain()  # the replies handled in the background


@pytest.fixture
async def fake_aliyun() -> AsyncIterator[FakeAliyunSms]:
    fake = FakeAliyunSms()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def services(
    database_url: str, tmp_path: object, clock: FakeClock, fake_aliyun: FakeAliyunSms
) -> AsyncIterator[Services]:
    """A city sending through Aliyun, its codes from PINGJIA_SMS_TEMPLATE_CODES."""
    postgres = database_url.startswith("postgresql")
    if postgres:
        await _clean_postgres(database_url)
    settings = make_settings(
        database_url,
        tmp_path,
        sms_provider="aliyun",
        sms_callback_key=KEY,
        public_url=PUBLIC,
        sms_template_codes=json.dumps(CODES),
    )
    block = AliyunSmsSettings(
        _env_file=None,  # type: ignore[call-arg]
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        endpoint=fake_aliyun.url,
    )
    built = await build_services(
        settings, migrate=not postgres, clock=clock, state=MemoryState(), sms_settings=block
    )
    yield built
    await built.close()


@pytest.fixture
async def aliyun(
    services: Services, fake_aliyun: FakeAliyunSms, aiohttp_client: ClientMaker
) -> Aliyun:
    assert services.sms.provider.name == "aliyun"
    return Aliyun(fake_aliyun, await aiohttp_client(build_app(services)), services)


async def invite(services: Services, clock: FakeClock) -> int:
    clock.advance(minutes=3)
    return await services.sms.send_due_invitations(clock())


async def test_invitation_receipt_and_a_reply_with_its_reason(
    aliyun: Aliyun, services: Services, clock: FakeClock
) -> None:
    await register(services)
    assert await invite(services, clock) == 1
    [(to, code, params)] = aliyun.sent()
    assert (to, code) == (PHONE, CODES["invitation"])
    assert params["case_no"] == "C2026112000001" and "/r/" in params["link"]
    [row] = await messages(services)
    assert aliyun.fake.requests[0].params["OutId"] == row.dedupe_key
    assert (row.status, row.provider, row.provider_sid) == (
        "sent",
        "aliyun",
        aliyun.fake.requests[0].biz_id,
    )
    report = report_item(row.provider_sid or "", row.dedupe_key)
    for _ in range(2):  # Aliyun pushes again: the repeat changes nothing
        await aliyun.push("/sms/aliyun/report", [report])
    [row] = await messages(services)
    assert row.status == "delivered"

    reply = up_item("５ 态度太差", sequence_id=90001)
    for _ in range(2):  # the same reply pushed twice: rated once, answered once
        await aliyun.push("/sms/aliyun/up", [reply])
    rating = await adopted(services, "C2026112000001")
    assert rating is not None
    assert (rating.level, rating.channel, rating.reason) == (5, "sms", "态度太差")
    evaluation = await services.ratings.evaluation("C2026112000001")
    assert len(evaluation.ratings) == 1
    [ticket] = await all_tickets(services)
    assert (ticket.level, ticket.reason) == (5, "态度太差")
    assert [code for _, code, _ in aliyun.sent()] == [CODES["invitation"], CODES["confirmation"]]
    assert aliyun.sent()[-1][2] == {"case_no": "C2026112000001", "label": "非常不满意"}


async def test_reminder_then_td_stops_everything(
    aliyun: Aliyun, services: Services, clock: FakeClock
) -> None:
    await register(services, "C1", phone=OTHER_PHONE)
    assert await invite(services, clock) == 1
    clock.advance(hours=24)
    assert await services.sms.send_due_reminders(clock()) == 1
    assert [(to, code) for to, code, _ in aliyun.sent()] == [
        (OTHER_PHONE, CODES["invitation"]),
        (OTHER_PHONE, CODES["reminder"]),
    ]
    assert aliyun.sent()[-1][2]["case_no"] == "C1"
    failed = report_item("x", success=False)
    reminder = (await messages(services))[-1]
    failed["biz_id"], failed["out_id"] = reminder.provider_sid, reminder.dedupe_key
    await aliyun.push("/sms/aliyun/report", [failed])
    reminder = (await messages(services))[-1]
    assert reminder.status == "undelivered" and "MK:0005 用户短信未送达" in (reminder.error or "")

    await aliyun.push("/sms/aliyun/up", [up_item("TD", sequence_id=90002, phone=OTHER_PHONE)])
    assert [code for _, code, _ in aliyun.sent()][-1] == CODES["opted_out"]
    count = len(aliyun.fake.requests)
    await register(services, "C2", phone=OTHER_PHONE)
    assert await invite(services, clock) == 0  # opted out: suppressed, nothing sent
    assert len(aliyun.fake.requests) == count


async def test_a_push_without_the_key_stores_nothing(aliyun: Aliyun, services: Services) -> None:
    await register(services)
    response = await aliyun.client.post("/sms/aliyun/up", json=[up_item("1", sequence_id=3)])
    assert response.status == 404
    await services.sms.inbox.intake.drain()
    assert await adopted(services, "C2026112000001") is None
