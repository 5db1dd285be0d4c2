"""The Tencent Cloud SMS provider: sends through the real SDK into a fake Tencent endpoint that
checks the TC3 signature, maps Tencent's errors, and reads Tencent's two callbacks.

Bad inputs tried here:
- settings: each required variable missing or empty, an app id with letters, endpoints with
  another scheme or a path, an extend code with letters, an allowlist item that is no address;
- sending: a template without a code; Tencent refusing the request (FailedOperation,
  InvalidParameterValue, UnauthorizedOperation, AuthFailure, a daily limit) or one number
  (per-number Code), throttling, internal errors, an unknown code; a wrong secret key; a
  dropped connection; an answer later than the timeout; a 502 page; a 200 HTML page; a 200
  without a content type; a 200 without SendStatusSet; an Ok without a SerialNo;
- callbacks: see test_malformed_status_bodies / test_malformed_reply_bodies, bodies over the
  limit (with a Content-Length and chunked), and posts from an address not on the allowlist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from sms.providers import DeliveryReport, InboundReply, OutboundSms, ProviderError
from sms.providers.plugin import CallbackGuard
from sms.providers.tencent import (
    TencentSmsProvider,
    TencentSmsSettings,
    allowed_networks,
    build,
    routes,
)
from sms.providers.tencent_callbacks import REPLY_MAX_BYTES, STATUS_MAX_BYTES
from tests.fakes.recording import serve_local
from tests.fakes.tencent_sms import (
    APP_ID,
    SECRET_ID,
    SECRET_KEY,
    FakeTencentSms,
    post_callback,
    reply_body,
    status_report,
)

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
CODES = {"invitation": "1987001", "confirmation": "1987002", "help": "1987003"}
SIGNATURE = "台山12345"
ClientMaker = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]

KEY = "tencent-callback-key-0001"
STATUS = f"/sms/tencent/status?key={KEY}"
REPLY = f"/sms/tencent/reply?key={KEY}"


def settings(url: str, **overrides: Any) -> TencentSmsSettings:
    values: dict[str, Any] = {
        "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY,
        "app_id": APP_ID,
        "endpoint": url,
        **overrides,
    }
    return TencentSmsSettings(_env_file=None, **values)  # type: ignore[call-arg]


def invitation(
    to: str = "13812345678", reference: str = "invite:1", ext: str | None = None
) -> OutboundSms:
    params = {"case_no": "C2026112000001", "link": "pj.example.cn/r/Ab3"}
    return OutboundSms(to, "invitation", params, "【台山12345】…", reference, ext)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTencentSms]:
    tencent = FakeTencentSms()
    await tencent.start()
    yield tencent
    await tencent.stop()


def make(fake: FakeTencentSms, **overrides: Any) -> TencentSmsProvider:
    timeout = overrides.pop("timeout", 5.0)
    return TencentSmsProvider(
        settings(fake.url, **overrides),
        signature=SIGNATURE,
        template_codes=CODES,
        clock=lambda: NOW,
        connections=8,
        timeout=timeout,
    )


@pytest.fixture
async def provider(fake: FakeTencentSms) -> AsyncIterator[TencentSmsProvider]:
    sending = make(fake)
    yield sending
    await sending.close()


async def test_the_fake_sees_what_tencent_needs(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    first = await provider.send(invitation(reference="invite:7", ext="4021"))
    second = await provider.send(invitation("+85251234567", "invite:8"))
    help_text = OutboundSms("13900001111", "help", {}, "…", "reply:9")
    third = await provider.send(help_text)
    assert fake.refused == []  # every request carried a valid TC3 signature
    sent = [r.body for r in fake.requests]
    assert sent[0] == {
        "SmsSdkAppId": APP_ID,
        "SignName": SIGNATURE,  # without 【】: Tencent adds them
        "TemplateId": "1987001",
        "TemplateParamSet": ["C2026112000001", "pj.example.cn/r/Ab3"],  # the Mapping's order
        "PhoneNumberSet": ["+8613812345678"],
        "SessionContext": "invite:7",
        "ExtendCode": "4021",
    }
    assert sent[1]["PhoneNumberSet"] == ["+85251234567"] and "ExtendCode" not in sent[1]
    assert sent[2]["TemplateId"] == "1987003" and sent[2]["TemplateParamSet"] == []
    assert [(r.action, r.version, r.region, r.secret_id) for r in fake.requests] == [
        ("SendSms", "2021-01-11", "ap-guangzhou", SECRET_ID)
    ] * 3
    assert [first.provider_id, second.provider_id, third.provider_id] == [
        r.serials[0] for r in fake.requests
    ]
    assert {first.status, second.status, third.status} == {"sent"}


async def test_sends_in_flight_are_bounded(fake: FakeTencentSms) -> None:
    fake.latency = 0.05
    sending = make(fake)  # 8 connections
    try:
        batch = [invitation(f"1380000{n:04d}", f"invite:{n}") for n in range(40)]
        receipts = await asyncio.gather(*(sending.send(m) for m in batch))
    finally:
        await sending.close()
    assert fake.peak == 8
    assert fake.sent_references() == {f"invite:{n}": 1 for n in range(40)}
    assert len({r.provider_id for r in receipts}) == 40


async def test_settings_extend_code_and_region(fake: FakeTencentSms) -> None:
    sending = make(fake, extend_code="77", region="ap-beijing")
    try:
        await sending.send(invitation())
        await sending.send(invitation(ext="5"))  # the message's own code wins
    finally:
        await sending.close()
    assert [r.body["ExtendCode"] for r in fake.requests] == ["77", "5"]
    assert {r.region for r in fake.requests} == {"ap-beijing"}


async def test_a_template_without_a_code_is_refused_before_sending(
    fake: FakeTencentSms, provider: TencentSmsProvider
) -> None:
    with pytest.raises(ProviderError, match="'reminder'") as refused:
        await provider.send(OutboundSms("13812345678", "reminder", {}, "…", "remind:1"))
    assert refused.value.retryable is False
    assert fake.requests == []


@pytest.mark.parametrize(
    ("code", "where", "retryable"),
    [
        ("FailedOperation.SignatureIncorrectOrUnapproved", "request", False),
        ("FailedOperation.TemplateIncorrectOrUnapproved", "request", False),
        ("InvalidParameterValue.IncorrectPhoneNumber", "number", False),
        ("InvalidParameterValue.ProhibitedUseUrlInTemplateParameter", "request", False),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "request", False),
        ("FailedOperation.PhoneNumberInBlacklist", "number", False),
        ("LimitExceeded.PhoneNumberDailyLimit", "number", False),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", "number", True),
        ("RequestLimitExceeded", "request", True),
        ("InternalError.Timeout", "request", True),
        ("InternalError.SendAndRecvFail", "number", True),
        ("SomethingNew.NeverSeenBefore", "number", True),
    ],
)
async def test_errors_are_mapped_and_sent_once(
    fake: FakeTencentSms, provider: TencentSmsProvider, code: str, where: str, retryable: bool
) -> None:
    fake.fail_next(code, "拒绝", where=where)
    with pytest.raises(ProviderError) as refused:
        await provider.send(invitation())
    assert refused.value.retryable is retryable
    assert str(refused.value) == f"Tencent Cloud SMS answered {code}: 拒绝"
    assert len(fake.requests) == 1  # no SDK retry


async def test_a_wrong_secret_is_refused_by_the_fake(fake: FakeTencentSms) -> None:
    sending = make(fake, secret_key="not-the-key")
    try:
        with pytest.raises(ProviderError, match=r"AuthFailure\.SignatureFailure") as refused:
            await sending.send(invitation())
    finally:
        await sending.close()
    assert refused.value.retryable is False
    assert fake.refused == ["AuthFailure.SignatureFailure"] and fake.requests == []


async def test_network_faults_are_retryable_and_sent_once(fake: FakeTencentSms) -> None:
    sending = make(fake, timeout=0.3)
    try:
        fake.drop_next()
        with pytest.raises(ProviderError, match="not reachable") as dropped:
            await sending.send(invitation())
        assert dropped.value.retryable
        fake.latency = 1.0
        with pytest.raises(ProviderError, match="not reachable") as slow:
            await sending.send(invitation())
        assert slow.value.retryable
    finally:
        await sending.close()
    assert fake.sent_references() == {"invite:1": 2}  # each send reached Tencent once


@pytest.mark.parametrize(
    ("status", "body", "content_type", "words"),
    [
        (502, b"<html>bad gateway</html>", "text/html", "ServerNetworkError: <html>bad gateway"),
        (200, b"<html>hotel wifi</html>", "text/html", "unreadable"),
        (200, b"{}", None, "unreadable"),
        (200, b'{"Response": {"RequestId": "r1"}}', "application/json", "without a SendStatus"),
        (
            200,
            b'{"Response": {"SendStatusSet": [{"Code": "Ok"}], "RequestId": "r1"}}',
            "application/json",
            "without a SerialNo",
        ),
    ],
)
async def test_odd_answers_are_retryable(
    fake: FakeTencentSms,
    provider: TencentSmsProvider,
    status: int,
    body: bytes,
    content_type: str | None,
    words: str,
) -> None:
    fake.answer_next(status, body, content_type)
    with pytest.raises(ProviderError, match=words) as odd:
        await provider.send(invitation())
    assert odd.value.retryable


async def test_close_twice_and_start(provider: TencentSmsProvider) -> None:
    await provider.start(RecordingEvents())
    assert provider.extension("106900012345") is None
    await provider.close()
    await provider.close()


def test_missing_settings_name_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "PINGJIA_TENCENT_SMS_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as none:
        TencentSmsSettings(_env_file=None)  # type: ignore[call-arg]
    assert (
        "PINGJIA_SMS_PROVIDER=tencent needs TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, "
        "PINGJIA_TENCENT_SMS_APP_ID" in str(none.value)
    )
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKID1")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "   ")  # empty counts as missing
    monkeypatch.setenv("PINGJIA_TENCENT_SMS_APP_ID", "1400000001")
    with pytest.raises(ValidationError) as blank:
        TencentSmsSettings(_env_file=None)  # type: ignore[call-arg]
    assert "needs TENCENTCLOUD_SECRET_KEY" in str(blank.value)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "the-key")
    monkeypatch.setenv("PINGJIA_TENCENT_SMS_CALLBACK_ALLOW", "203.0.113.0/24, 2001:db8::1")
    loaded = TencentSmsSettings(_env_file=None)  # type: ignore[call-arg]
    assert (loaded.secret_id, loaded.secret_key.get_secret_value(), loaded.app_id) == (
        "AKID1",
        "the-key",
        "1400000001",
    )
    assert (loaded.endpoint, loaded.region) == ("https://sms.tencentcloudapi.com", "ap-guangzhou")
    assert "the-key" not in repr(loaded)


@pytest.mark.parametrize(
    ("field_name", "value", "variable"),
    [
        ("app_id", "14000abc", "PINGJIA_TENCENT_SMS_APP_ID"),
        ("endpoint", "ftp://127.0.0.1:9000", "PINGJIA_TENCENT_SMS_ENDPOINT"),
        ("endpoint", "http://127.0.0.1:9000/sms", "PINGJIA_TENCENT_SMS_ENDPOINT"),
        ("endpoint", "sms.tencentcloudapi.com", "PINGJIA_TENCENT_SMS_ENDPOINT"),
        ("extend_code", "12a", "PINGJIA_TENCENT_SMS_EXTEND_CODE"),
        ("callback_allow", "203.0.113.7,tencent", "PINGJIA_TENCENT_SMS_CALLBACK_ALLOW"),
    ],
)
def test_bad_settings_name_their_variable(field_name: str, value: str, variable: str) -> None:
    with pytest.raises(ValidationError) as bad:
        settings("http://127.0.0.1:9000", **{field_name: value})
    assert variable in str(bad.value) and SECRET_KEY not in str(bad.value)


# Callbacks -------------------------------------------------------------------------------


@dataclass
class RecordingEvents:
    """SmsEvents that records what it is handed; `known` are the sids of our messages."""

    known: set[str] = field(default_factory=set)
    deliveries: list[tuple[DeliveryReport, datetime]] = field(default_factory=list)
    replies: list[tuple[InboundReply, datetime]] = field(default_factory=list)

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        self.deliveries.append((report, at))
        return report.provider_id in self.known

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        self.replies.append((reply, at))


@dataclass
class Context:
    public_url: str
    signature: str
    template_codes: Mapping[str, str]
    clock: Callable[[], datetime]
    connections: int


async def callbacks(
    aiohttp_client: ClientMaker, fake: FakeTencentSms, allow: str = ""
) -> tuple[TestClient[web.Request, web.Application], RecordingEvents, TencentSmsProvider]:
    context = Context("https://pj.example.cn", SIGNATURE, CODES, lambda: NOW, 4)
    provider = build(settings(fake.url, callback_allow=allow), context)
    events = RecordingEvents(known={"2433:1"})
    app = web.Application()
    app.add_routes(routes(provider, events, CallbackGuard(KEY, allowed_networks(allow))))

    async def close(_app: web.Application) -> None:
        await provider.close()

    app.on_cleanup.append(close)
    return await aiohttp_client(app), events, provider


async def test_status_reports(aiohttp_client: ClientMaker, fake: FakeTencentSms) -> None:
    client, events, _ = await callbacks(aiohttp_client, fake)
    batch = [status_report("2433:1"), status_report("2433:2", success=False)]
    for _ in range(2):  # Tencent pushes again when unsure: the repeat is answered alike
        response = await client.post(STATUS, json=batch)
        assert response.status == 200
        assert await response.json() == {"result": 0, "errmsg": "OK"}
    delivered = DeliveryReport("2433:1", "delivered")
    failed = DeliveryReport("2433:2", "undelivered", "MK:0005 用户短信未送达")
    assert events.deliveries == [(delivered, NOW), (failed, NOW)] * 2
    empty = await client.post(STATUS, json=[])
    assert empty.status == 200 and len(events.deliveries) == 4


async def test_replies(aiohttp_client: ClientMaker, fake: FakeTencentSms) -> None:
    client, events, _ = await callbacks(aiohttp_client, fake)
    bodies = [
        reply_body("１ 很好", extend="4021"),
        reply_body("１ 很好", extend="4021"),  # the same reply pushed again
        reply_body("１ 很好", at=1_795_000_060, extend="4021"),  # a new reply, same words
        {**reply_body("5"), "nationcode": "852", "mobile": "51234567", "time": "1795000000"},
    ]
    for body in bodies:
        response = await client.post(REPLY, json=body)
        assert response.status == 200
        assert await response.json() == {"result": 0, "errmsg": "OK"}
    replies = [reply for reply, at in events.replies]
    assert {at for _, at in events.replies} == {NOW}
    first = replies[0]
    assert (first.sender, first.text, first.extension, first.to_address) == (
        "13812345678",
        "１ 很好",
        "4021",
        "",
    )
    assert first.sent_at == datetime.fromtimestamp(1_795_000_000, UTC)
    assert replies[1] == first  # same dedup key: the events make it a no-op
    assert replies[2].dedup_key != first.dedup_key
    assert replies[3].sender == "+85251234567" and replies[3].extension is None
    assert len({r.dedup_key for r in replies}) == 3
    assert all(r.dedup_key.startswith("tencent-") and len(r.dedup_key) <= 64 for r in replies)


BAD_STATUS: list[tuple[bytes, str]] = [
    (b"not json", "not JSON"),
    (b"\xff\xfe[]", "not UTF-8"),
    (b'{"sid": "2433:1"}', "JSON array"),
    (b'["2433:1"]', "report 0 is not an object"),
    (b'[{"report_status": "SUCCESS"}]', "sid must be a string"),
    (b'[{"sid": 2433, "report_status": "SUCCESS"}]', "sid must be a string, got int"),
    (b'[{"sid": "  ", "report_status": "SUCCESS"}]', "sid is empty"),
    (b'[{"sid": "2433:1", "report_status": "DELIVERED"}]', "neither SUCCESS nor FAIL"),
    (b'[{"sid": "2433:1\\u0000", "report_status": "SUCCESS"}]', "holds NUL"),
    (b'[{"sid": "' + b"9" * 65 + b'", "report_status": "SUCCESS"}]', "longer than 64"),
    (b'[{"sid": "2433:1", "report_status": "FAIL", "errmsg": ["x"]}]', "errmsg must be"),
    # a good report first, a bad one last: neither is recorded
    (b'[{"sid": "2433:1", "report_status": "SUCCESS"}, {"sid": "2433:2"}]', "report 1"),
]


@pytest.mark.parametrize(("body", "words"), BAD_STATUS)
async def test_malformed_status_bodies(
    aiohttp_client: ClientMaker, fake: FakeTencentSms, body: bytes, words: str
) -> None:
    client, events, _ = await callbacks(aiohttp_client, fake)
    response = await client.post(STATUS, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "bad_request" and words in error["message"]
    assert error["message"].startswith("Tencent status callback refused: ")
    assert events.deliveries == []


BAD_REPLY: list[tuple[Any, str]] = [
    ([reply_body("1")], "JSON object"),
    ({k: v for k, v in reply_body("1").items() if k != "mobile"}, "mobile must be a string"),
    ({**reply_body("1"), "mobile": "138abc"}, "must be digits"),
    ({**reply_body("1"), "nationcode": "8 6"}, "must be digits"),
    ({k: v for k, v in reply_body("1").items() if k != "time"}, "time must be Unix seconds"),
    ({**reply_body("1"), "time": "yesterday"}, "time must be Unix seconds"),
    ({**reply_body("1"), "time": True}, "time must be Unix seconds"),
    ({**reply_body("1"), "time": 1_795_000_000_000}, "time 1795000000000"),  # milliseconds
    ({**reply_body("1"), "time": 10**30}, "out of range"),
    ({**reply_body("1"), "time": -5}, "not Unix seconds of a reply"),
    ({**reply_body("1"), "text": 1}, "text must be a string"),
    ({**reply_body("1"), "text": "好" * 1601}, "longer than 1600"),
    ({**reply_body("1"), "text": "1\x00"}, "holds NUL"),
    ({**reply_body("1"), "extend": "40a"}, "extend '40a' is not digits"),
    ({**reply_body("1"), "sign": {"name": "x"}}, "sign must be a string"),
]


@pytest.mark.parametrize(("body", "words"), BAD_REPLY)
async def test_malformed_reply_bodies(
    aiohttp_client: ClientMaker, fake: FakeTencentSms, body: Any, words: str
) -> None:
    client, events, _ = await callbacks(aiohttp_client, fake)
    response = await client.post(REPLY, json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "bad_request" and words in error["message"], error
    assert events.replies == []


async def test_bodies_over_the_limit(aiohttp_client: ClientMaker, fake: FakeTencentSms) -> None:
    client, events, _ = await callbacks(aiohttp_client, fake)
    big = b'["' + b"x" * STATUS_MAX_BYTES + b'"]'
    response = await client.post(STATUS, data=big)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to refuse up front
        yield b'{"text": "'
        for _ in range(REPLY_MAX_BYTES // 1024 + 1):
            yield b"y" * 1024
        yield b'"}'

    response = await client.post(REPLY, data=chunked())
    assert response.status == 413
    assert f"larger than {REPLY_MAX_BYTES} bytes" in (await response.json())["error"]["message"]
    assert events.deliveries == [] and events.replies == []


async def test_callback_allowlist(aiohttp_client: ClientMaker, fake: FakeTencentSms) -> None:
    client, events, _ = await callbacks(aiohttp_client, fake, allow="203.0.113.0/24")
    refused = await client.post(STATUS, json=[status_report("2433:1")])
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    refused = await client.post(REPLY, json=reply_body("1"))
    assert refused.status == 403 and events.deliveries == [] and events.replies == []
    client, events, _ = await callbacks(aiohttp_client, fake, allow="203.0.113.0/24, 127.0.0.1")
    allowed = await client.post(STATUS, json=[status_report("2433:1")])
    assert allowed.status == 200 and len(events.deliveries) == 1


async def test_a_sent_message_and_its_report_from_the_fake(fake: FakeTencentSms) -> None:
    """End to end: the SerialNo the fake answered comes back in the status it posts."""
    events = RecordingEvents()
    context = Context("https://pj.example.cn", SIGNATURE, CODES, lambda: NOW, 4)
    provider = build(settings(fake.url), context)
    app = web.Application()
    app.add_routes(routes(provider, events, CallbackGuard(KEY)))
    runner, url = await serve_local(app)
    try:
        sent = await provider.send(invitation())
        events.known.add(sent.provider_id)
        status, answer = await post_callback(url + STATUS, [status_report(sent.provider_id)])
        assert (status, answer) == (200, {"result": 0, "errmsg": "OK"})
        status, answer = await post_callback(url + REPLY, reply_body("2"))
        assert (status, answer) == (200, {"result": 0, "errmsg": "OK"})
    finally:
        await provider.close()
        await runner.cleanup()
    assert events.deliveries == [(DeliveryReport(sent.provider_id, "delivered"), NOW)]
    assert [reply.text for reply, _ in events.replies] == ["2"]
