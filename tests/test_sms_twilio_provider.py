"""Our Twilio provider sends what the Twilio SDK sends, and reads Twilio's answers as it does.

Bad inputs tried here: Twilio refusing with 400 (a Twilio error body), 503, 429, a 500 whose
body is not JSON, a 2xx without a sid, a 2xx whose body is HTML, a JSON list, or empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from sms.providers import OutboundSms, ProviderError
from sms.providers.twilio import TwilioProvider
from tests.fakes.recording import serve_local
from tests.fakes.twilio_api import FakeTwilio
from tests.sms_support import SENDER, SID, TOKEN

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's aiohttp use
CALLBACK = "https://12345.example.gov.cn/sms/twilio/status?a=1&b=二"
TEXT = "【台山12345】诉求C2026112000001评价已记录：非常不满意 & 100% + 感谢 https://x/r/Ab-_12?q=1"


def message(to: str = "13912345678", text: str = TEXT) -> OutboundSms:
    return OutboundSms(to, "confirmation", {}, text, "reply:SM1")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    twilio = FakeTwilio()
    await twilio.start()
    yield twilio
    await twilio.stop()


@pytest.fixture
async def provider(fake: FakeTwilio) -> AsyncIterator[TwilioProvider]:
    sending = TwilioProvider(SID, TOKEN, SENDER, CALLBACK, api_url=fake.url + "/")
    yield sending
    await sending.close()


async def test_the_request_is_the_sdks(fake: FakeTwilio, provider: TwilioProvider) -> None:
    for to in ("13912345678", "02087654321", "+15005550009"):
        receipt = await provider.send(message(to))
        assert receipt.provider_id.startswith("SM") and receipt.status == "queued"
    http = AsyncTwilioHttpClient()
    sdk = Client(SID, TOKEN, http_client=http, environment={})
    sdk.api.base_url = fake.url
    for to in ("+8613912345678", "+862087654321", "+15005550009"):
        await sdk.messages.create_async(to=to, from_=SENDER, body=TEXT, status_callback=CALLBACK)
    await http.close()
    ours, theirs = fake.requests[:3], fake.requests[3:]
    assert [(r.account_sid, r.form, r.username, r.password) for r in ours] == [
        (r.account_sid, r.form, r.username, r.password) for r in theirs
    ]
    assert list(ours[0].form) == ["To", "StatusCallback", "From", "Body"]
    assert ours[0].form["Body"] == TEXT and ours[0].form["StatusCallback"] == CALLBACK


@pytest.mark.parametrize(
    ("status", "code", "retryable"), [(400, 21211, False), (503, 20500, True), (429, 20429, True)]
)
async def test_refusals_read_as_the_sdk_reads_them(
    fake: FakeTwilio, provider: TwilioProvider, status: int, code: int, retryable: bool
) -> None:
    fake.fail_next(1, status=status, code=code)
    with pytest.raises(ProviderError) as refused:
        await provider.send(message())
    assert refused.value.retryable is retryable
    assert str(refused.value) == (
        f"Twilio answered {status} (code {code}): Unable to create record: fake failure {status}"
    )


async def test_odd_answers() -> None:
    answers = iter(
        [
            web.Response(status=500, text="<html>down</html>"),
            web.json_response({"status": "queued"}, status=201),
            web.Response(status=200, text="<html>welcome to the hotel wifi</html>"),
            web.json_response(["SM1"], status=201),
            web.Response(status=204),
        ]
    )

    async def messages(_request: web.Request) -> web.Response:
        return next(answers)

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", messages)
    runner, url = await serve_local(app)
    sending = TwilioProvider(SID, TOKEN, SENDER, CALLBACK, api_url=url)
    try:
        with pytest.raises(ProviderError) as down:
            await sending.send(message())
        assert down.value.retryable
        assert str(down.value) == "Twilio answered 500 (code 500): Unable to create record"
        for _ in range(4):  # no sid, not JSON, JSON but no object, empty: each retried
            with pytest.raises(ProviderError, match="without a message sid") as odd:
                await sending.send(message())
            assert odd.value.retryable
    finally:
        await sending.close()
        await runner.cleanup()
