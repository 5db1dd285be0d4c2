"""Helpers the SMS tests share: registering cases, reading what was sent, replying."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import pytest
from sqlalchemy import select

from pingjia.composition import Services, build_services
from rating.cases.models import Evaluation, Rating
from rating.cases.registration import ServiceRecord
from rating.state import MemoryState
from rating.tickets.models import Ticket
from sms.providers import Recorded
from sms.providers.console import ConsoleProvider
from sms.providers.twilio import TwilioSmsSettings
from sms.replies.outcome import InboundResult
from sms.storage.models import SmsMessage
from tests.conftest import _clean_postgres, make_settings
from tests.fakes.clock import FakeClock
from tests.fakes.twilio_api import FakeTwilio

PHONE = "13812345678"
OTHER_PHONE = "13900001111"
SID = "AC" + "1" * 32
TOKEN = "twilio-auth-token"
SENDER = "+15005550006"
PUBLIC = "https://pingjia.example.gov.cn"
KEY = "callback-key-of-the-test-city"  # PINGJIA_SMS_CALLBACK_KEY


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    """Our fake Twilio API, a real server on 127.0.0.1."""
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def tw(
    database_url: str, tmp_path: object, clock: FakeClock, fake_twilio: FakeTwilio
) -> AsyncIterator[Services]:
    """The services with the real Twilio SDK pointed at the fake."""
    postgres = database_url.startswith("postgresql")
    if postgres:
        await _clean_postgres(database_url)
    settings = make_settings(
        database_url,
        tmp_path,
        sms_provider="twilio",
        sms_callback_key=KEY,
        public_url=PUBLIC,
    )
    block = twilio_settings(fake_twilio.url)
    built = await build_services(
        settings, migrate=not postgres, clock=clock, state=MemoryState(), sms_settings=block
    )
    yield built
    await built.close()


def twilio_settings(api_url: str) -> TwilioSmsSettings:
    """Twilio's settings block for the tests, whatever the environment says."""
    return TwilioSmsSettings(
        _env_file=None, account_sid=SID, auth_token=TOKEN, sender=SENDER, api_url=api_url
    )


async def register(
    services: Services,
    case_no: str = "C2026112000001",
    phone: str | None = PHONE,
    completed_at: datetime | None = None,
) -> Evaluation:
    evaluation, _ = await services.ratings.register(
        ServiceRecord(
            case_no=case_no,
            kind="complaint",
            phone=phone,
            completed_at=completed_at or services.clock(),
            agency="台山市市场监督管理局",
            matter="食品安全投诉",
        ),
        actor="test",
        now=services.clock(),
    )
    return evaluation


def sent(services: Services) -> list[Recorded]:
    return cast(ConsoleProvider, services.sms.provider).sent


async def reply(
    services: Services, body: str, sid: str, phone: str = PHONE, to: str = ""
) -> InboundResult:
    return await services.sms.inbox.handle(sid, "+86" + phone, to, body, services.clock())


async def messages(services: Services, **where: Any) -> list[SmsMessage]:
    query = select(SmsMessage).order_by(SmsMessage.id)
    for name, value in where.items():
        query = query.where(getattr(SmsMessage, name) == value)
    async with services.sessions() as session:
        return list((await session.execute(query)).scalars().all())


async def adopted(services: Services, case_no: str) -> Rating | None:
    evaluation = await services.ratings.evaluation(case_no)
    return next((r for r in evaluation.ratings if r.adopted), None)


async def tickets(services: Services) -> list[Ticket]:
    async with services.sessions() as session:
        return list((await session.execute(select(Ticket))).scalars().all())
