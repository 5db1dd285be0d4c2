"""Twilio end to end: the real SDK against our fake Twilio API, and signed webhooks into the app.

Bad inputs tried here: no signature, a wrong signature, a signature over another URL, a signed
form without MessageSid, an unknown MessageStatus, a status for a message we never sent,
webhooks while no TWILIO_AUTH_TOKEN is set, the same MessageSid twice, statuses out of order,
Twilio answering 500 (retried once, then left) and 400 (not retried), Twilio unreachable.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from pingjia.app import build_app
from pingjia.composition import Services
from sms.storage.models import SmsInbound
from tests.fakes.clock import FakeClock
from tests.fakes.twilio_api import FakeTwilio, sign
from tests.sms_support import (
    KEY,
    PHONE,
    PUBLIC,
    SENDER,
    SID,
    TOKEN,
    adopted,
    messages,
    register,
)
from tests.sms_support import tickets as all_tickets

INBOUND = f"/sms/twilio/inbound?key={KEY}"
STATUS = f"/sms/twilio/status?key={KEY}"

# The SDK itself uses aiohttp APIs that aiohttp deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def client(aiohttp_client: Any, tw: Services) -> TestClient:
    return await aiohttp_client(build_app(tw))  # type: ignore[no-any-return]


async def post_signed(
    client: TestClient, path: str, params: dict[str, str], url: str | None = None
) -> Any:
    signature = sign(TOKEN, url or PUBLIC + path, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def inbound(body: str, sid: str = "SM100") -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": SID,
        "From": "+86" + PHONE,
        "To": SENDER,
        "Body": body,
        "NumMedia": "0",
    }


async def invited(tw: Services, clock: FakeClock) -> None:
    await register(tw)
    clock.advance(minutes=3)
    assert await tw.sms.send_due_invitations(clock()) == 1


async def test_invitation_through_the_twilio_sdk(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    await invited(tw, clock)
    [request] = fake_twilio.requests
    assert (request.username, request.password, request.account_sid) == (SID, TOKEN, SID)
    assert request.form["To"] == "+8613812345678"
    assert request.form["From"] == SENDER
    assert request.form["StatusCallback"] == PUBLIC + STATUS
    assert request.form["Body"].startswith("【台山12345】12345回访：诉求C2026112000001")
    assert PUBLIC + "/r/" in request.form["Body"]
    [row] = await messages(tw)
    assert row.status == "queued" and row.provider_sid and row.provider_sid.startswith("SM")


async def test_failed_send_is_retried_once(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(2, status=500)
    await register(tw)
    clock.advance(minutes=3)
    assert await tw.sms.send_due_invitations(clock()) == 0
    [row] = await messages(tw)
    assert row.status == "failed" and row.next_attempt_at is not None
    assert await tw.sms.retry_failed(clock()) == 0  # not yet due
    assert len(fake_twilio.requests) == 1
    clock.advance(minutes=31)
    assert await tw.sms.retry_failed(clock()) == 0  # the one retry, failed again
    clock.advance(hours=2)
    assert await tw.sms.retry_failed(clock()) == 0  # no third attempt
    [row] = await messages(tw)
    assert (row.status, row.attempts) == ("failed", 2)
    assert len(fake_twilio.requests) == 2


async def test_retry_succeeds(tw: Services, clock: FakeClock, fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(1, status=503)
    await register(tw)
    clock.advance(minutes=3)
    await tw.sms.send_due_invitations(clock())
    clock.advance(minutes=31)
    assert await tw.sms.retry_failed(clock()) == 1
    [row] = await messages(tw)
    assert (row.status, row.attempts) == ("queued", 2)


async def test_refused_number_is_not_retried(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(1, status=400, code=21211)
    await register(tw)
    clock.advance(minutes=3)
    await tw.sms.send_due_invitations(clock())
    [row] = await messages(tw)
    assert row.status == "failed" and row.next_attempt_at is None
    assert "21211" in (row.error or "")


async def test_unreachable_twilio_is_a_retryable_failure(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio
) -> None:
    await fake_twilio.stop()
    await register(tw)
    clock.advance(minutes=3)
    assert await tw.sms.send_due_invitations(clock()) == 0
    [row] = await messages(tw)
    assert row.status == "failed" and row.next_attempt_at is not None


async def test_signed_reply_rates_with_reason_and_ticket(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio, client: TestClient
) -> None:
    await invited(tw, clock)
    response = await post_signed(client, INBOUND, inbound("５ 态度太差"))
    assert response.status == 200
    assert "<Response>" in await response.text()
    await tw.sms.inbox.intake.drain()  # the webhook sends its answer in the background
    rating = await adopted(tw, "C2026112000001")
    assert rating is not None and (rating.level, rating.reason) == (5, "态度太差")
    assert len(await all_tickets(tw)) == 1
    assert "诉求C2026112000001评价已记录：非常不满意" in fake_twilio.requests[-1].form["Body"]
    # Twilio retries the same MessageSid: nothing changes, nothing is sent again.
    again = await post_signed(client, INBOUND, inbound("５ 态度太差"))
    assert again.status == 200
    await tw.sms.inbox.intake.drain()
    assert len(fake_twilio.requests) == 2
    assert len((await tw.ratings.evaluation("C2026112000001")).ratings) == 1


async def test_td_stops_further_messages(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio, client: TestClient
) -> None:
    await invited(tw, clock)
    assert (await post_signed(client, INBOUND, inbound("TD"))).status == 200
    await tw.sms.inbox.intake.drain()
    assert "已退订" in fake_twilio.requests[-1].form["Body"]
    clock.advance(hours=24)
    assert await tw.sms.send_due_reminders(clock()) == 0
    await register(tw, "C2")
    clock.advance(minutes=3)
    assert await tw.sms.send_due_invitations(clock()) == 0
    assert len(fake_twilio.requests) == 2


@pytest.mark.parametrize("fault", ["missing", "garbage", "other_url"])
async def test_bad_signature_is_403(
    tw: Services, client: TestClient, fake_twilio: FakeTwilio, fault: str
) -> None:
    params = inbound("1")
    # Signed over the URL we listen on instead of the public one Twilio signs: refused too.
    signature = {
        "missing": "",
        "garbage": "bm90IGEgc2lnbmF0dXJl",
        "other_url": sign(TOKEN, "http://127.0.0.1:8080/sms/twilio/inbound", params),
    }[fault]
    response = await client.post(INBOUND, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    assert await messages(tw) == [] and fake_twilio.requests == []


async def test_signed_but_incomplete_is_400(client: TestClient) -> None:
    params = inbound("1")
    del params["MessageSid"]
    assert (await post_signed(client, INBOUND, params)).status == 400
    response = await post_signed(client, STATUS, {"MessageSid": "SM1", "MessageStatus": "exploded"})
    assert response.status == 400
    assert "exploded" in (await response.json())["error"]["message"]


async def test_delivery_status_never_goes_back(
    tw: Services, clock: FakeClock, client: TestClient
) -> None:
    await invited(tw, clock)
    [row] = await messages(tw)
    sid = row.provider_sid or ""
    for status in ("sent", "delivered", "sent"):
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID}
        assert (await post_signed(client, STATUS, params)).status == 204
    [row] = await messages(tw)
    assert row.status == "delivered"
    unknown = {"MessageSid": "SMunknown", "MessageStatus": "delivered"}
    assert (await post_signed(client, STATUS, unknown)).status == 204


async def test_undelivered_invitation_is_retried(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio, client: TestClient
) -> None:
    await invited(tw, clock)
    [row] = await messages(tw)
    params = {
        "MessageSid": row.provider_sid or "",
        "MessageStatus": "undelivered",
        "ErrorCode": "30005",
    }
    assert (await post_signed(client, STATUS, params)).status == 204
    [row] = await messages(tw)
    assert row.status == "undelivered" and "30005" in (row.error or "")
    clock.advance(minutes=31)
    assert await tw.sms.retry_failed(clock()) == 1
    assert len(fake_twilio.requests) == 2


async def test_no_twilio_webhooks_under_another_provider(
    services: Services, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(build_app(services))  # the console provider
    assert (await post_signed(client, INBOUND, inbound("1"))).status == 404
    assert await messages(services) == []


@pytest.mark.parametrize("path", ["/sms/twilio/inbound", "/sms/twilio/inbound?key=wrong"])
async def test_a_signed_webhook_without_the_key_is_404(
    tw: Services, client: TestClient, path: str
) -> None:
    response = await post_signed(client, path, inbound("1"))
    assert response.status == 404
    status = await post_signed(client, path.replace("inbound", "status"), {"MessageSid": "SM1"})
    assert status.status == 404
    assert await messages(tw) == []
    async with tw.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsInbound)) == 0


async def test_the_signature_covers_the_key(tw: Services, client: TestClient) -> None:
    # Signed over the URL without its key, posted with it: not what Twilio signed.
    signature = sign(TOKEN, PUBLIC + "/sms/twilio/inbound", inbound("1"))
    response = await client.post(
        INBOUND, data=inbound("1"), headers={"X-Twilio-Signature": signature}
    )
    assert response.status == 403 and await messages(tw) == []


async def test_probes_are_answered_and_store_nothing(tw: Services, client: TestClient) -> None:
    probe = await client.get(INBOUND)
    assert probe.status == 200 and "<Response>" in await probe.text()
    assert (await client.head(STATUS)).status == 204
    assert (await client.post(INBOUND, data=b"")).status == 200
    assert await messages(tw) == []


async def test_inbound_statuses_are_not_stored(
    tw: Services, clock: FakeClock, client: TestClient
) -> None:
    await invited(tw, clock)
    [row] = await messages(tw)
    for word in ("received", "receiving"):
        params = {"MessageSid": row.provider_sid or "", "MessageStatus": word}
        assert (await post_signed(client, STATUS, params)).status == 204
    [after] = await messages(tw)
    assert after.status == "queued"


async def test_queued_replies_wait_for_the_inbox_sweep(
    tw: Services, clock: FakeClock, fake_twilio: FakeTwilio, client: TestClient
) -> None:
    """PINGJIA_SMS_REPLIES=queued: the webhook stores and answers; a scheduler handles."""
    tw.sms.inbox.intake.queued = True
    await invited(tw, clock)
    response = await post_signed(client, INBOUND, inbound("５ 态度太差"))
    assert response.status == 200
    await tw.sms.inbox.intake.drain()
    assert await adopted(tw, "C2026112000001") is None  # stored, not handled here
    assert len(fake_twilio.requests) == 1  # the invitation only
    assert await tw.sms.inbox.intake.resume_stale(clock()) == 1  # at once, no stale wait
    assert await tw.sms.inbox.intake.resume_stale(clock()) == 0  # and once
    rating = await adopted(tw, "C2026112000001")
    assert rating is not None and (rating.level, rating.reason) == (5, "态度太差")
    assert "非常不满意" in fake_twilio.requests[-1].form["Body"]
