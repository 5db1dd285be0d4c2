"""Twilio's webhooks across a PostgreSQL crash, and the rating page with Redis stopped and
started again; the SMS provider erring, its callbacks repeated and out of order.

Counted: one rating per reply however often Twilio delivers it, one answer SMS, one final
delivery status; with Redis down the citizen still rates (the limit is skipped, the health
check says "degraded"), and with Redis back the guessing limit holds again.
Bad inputs tried: a reply and a delivery receipt posted while the database is down (a 5xx,
so Twilio delivers them again), the same MessageSid three times, statuses sent/delivered/sent
and delivered twice, a send answered 500 by the provider, a burst of unknown link tokens once
Redis is back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.state import make_state
from sms.providers import Recorded
from sms.providers.console import ConsoleProvider
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.fakes.twilio_api import FakeTwilio, sign
from tests.faults.ledger import read_ledger
from tests.sms_support import (
    KEY,
    PHONE,
    PUBLIC,
    SENDER,
    SID,
    TOKEN,
    messages,
    register,
    twilio_settings,
)
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    # The Twilio SDK uses aiohttp APIs that aiohttp deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture
async def tw(
    fault_db: str, tmp_path: Path, clock: FakeClock, fake_twilio: FakeTwilio
) -> AsyncIterator[Services]:
    settings = make_settings(
        fault_db,
        tmp_path,
        sms_provider="twilio",
        sms_callback_key=KEY,
        public_url=PUBLIC,
    )
    built = await build_services(
        settings,
        migrate=False,
        clock=clock,
        state=make_state(None),
        sms_settings=twilio_settings(fake_twilio.url),
    )
    yield built
    await built.close()


async def post_signed(client: TestClient, path: str, params: dict[str, str]) -> Any:
    path = f"{path}?key={KEY}"  # every provider callback carries the city's key
    signature = sign(TOKEN, PUBLIC + path, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def settle(check: Any) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the background handling never finished")


async def test_replies_and_receipts_across_a_database_crash_count_once(
    tw: Services,
    clock: FakeClock,
    fake_twilio: FakeTwilio,
    fault_postgres: ThrowawayPostgres,
    aiohttp_client: Any,
) -> None:
    client: TestClient = await aiohttp_client(build_app(tw))
    await register(tw)
    clock.advance(minutes=3)
    fake_twilio.fail_next(1, status=500)  # the provider errs: the invitation is retried later
    assert await tw.sms.send_due_invitations(clock()) == 0
    clock.advance(minutes=31)
    assert await tw.sms.retry_failed(clock()) == 1
    [invitation] = await messages(tw)
    sid = invitation.provider_sid or ""
    reply = {
        "MessageSid": "SMreply1",
        "AccountSid": SID,
        "From": "+86" + PHONE,
        "To": SENDER,
        "Body": "2",
        "NumMedia": "0",
    }
    receipt = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": SID}

    fault_postgres.kill()
    down_reply = await post_signed(client, "/sms/twilio/inbound", reply)
    down_receipt = await post_signed(client, "/sms/twilio/status", receipt)
    assert down_reply.status >= 500 and down_receipt.status >= 500  # Twilio tries again
    fault_postgres.start()

    answers = []
    for _ in range(3):  # delivered again, and again: the pool's dead connections fail once
        response = await post_signed(client, "/sms/twilio/inbound", reply)
        answers.append(response.status)
    assert answers[-1] == 200 and all(s in (200, 500, 503) for s in answers), answers
    for status in ("sent", "delivered", "sent", "delivered"):  # out of order, and twice
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID}
        assert (await post_signed(client, "/sms/twilio/status", params)).status == 204

    async def answered() -> bool:
        return len(await messages(tw)) == 2

    await settle(answered)
    ledger = await read_ledger(tw.sessions)
    assert ledger.ratings == 1 and ledger.adopted == 1
    rows = await messages(tw)
    assert [r.kind for r in rows].count("invitation") == 1
    assert rows[0].status == "delivered"
    to_citizen = [r for r in fake_twilio.requests if r.form["To"] == "+86" + PHONE]
    assert len(to_citizen) == 3  # the invitation (failed once, then sent) and one answer


@pytest.fixture
async def on_redis(
    fault_db: str, fault_redis: ThrowawayRedis, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Services]:
    settings = make_settings(fault_db, tmp_path, redis_url=fault_redis.url(0))
    state = make_state(fault_redis.url(0))
    built = await build_services(settings, migrate=False, clock=clock, state=state)
    yield built
    await built.close()


async def link_of(services: Services, case_no: str, clock: FakeClock) -> str:
    await register(services, case_no)
    clock.advance(minutes=3)
    await services.sms.send_due_invitations(clock())
    sent = cast(ConsoleProvider, services.sms.provider).sent
    recorded: Recorded = sent[-1]
    return "/r/" + str(recorded.params["link"]).rsplit("/", 1)[1]


async def rate_on_page(client: TestClient, path: str) -> int:
    form = await client.get(path)
    assert form.status == 200, await form.text()
    match = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert match is not None
    response = await client.post(path, data={"csrf": match.group(1), "level": "2"})
    return response.status


async def test_redis_stopped_and_started_loses_no_rating(
    on_redis: Services, fault_redis: ThrowawayRedis, clock: FakeClock, aiohttp_client: Any
) -> None:
    client: TestClient = await aiohttp_client(build_app(on_redis))
    first = await link_of(on_redis, "C2026112000001", clock)
    second = await link_of(on_redis, "C2026112000002", clock)
    assert (await (await client.get("/healthz")).json())["state"] is True

    fault_redis.stop()
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "degraded"
    assert await rate_on_page(client, first) == 200  # the limit is skipped, the rating kept

    fault_redis.start()
    assert (await (await client.get("/healthz")).json())["state"] is True
    assert await rate_on_page(client, second) == 200
    ledger = await read_ledger(on_redis.sessions)
    assert ledger.adopted == 2 and ledger.ratings == 2
    statuses = [(await client.get(f"/r/guess{n:020d}")).status for n in range(15)]
    assert 429 in statuses  # the guessing limit holds again, on the restarted Redis
