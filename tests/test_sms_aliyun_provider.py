"""The Aliyun SMS provider: sends through the real SDK (dysmsapi 2017-05-25, POP signature v3)
into a fake Aliyun endpoint that checks the signature, maps Aliyun's errors, and reads
Aliyun's two pushes (SmsReport, SmsUpReport).

Bad inputs tried here:
- settings: each required variable missing or empty, endpoints with another scheme or a path,
  an extend code with letters, an allowlist item that is no address;
- sending: a template without a code; Aliyun refusing the request (signature, template,
  number, black list, daily limit, parameters) with HTTP 200 and its isv code, the gateway
  refusing with 4xx (a wrong secret, an unknown key), throttling and server errors (5xx), a
  per-minute limit, an unknown code; a dropped connection; an answer later than the timeout;
  a 502 page; a 200 HTML page; a 200 without a Code; an OK without a BizId;
- callbacks: see BAD_BODIES / BAD_ITEMS, a body over the limit, a wrong or missing key and an
  address not on the allowlist (through the CallbackGuard).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from rating.networks import parse_networks
from sms.providers import DeliveryReport, InboundReply, OutboundSms, ProviderError
from sms.providers.aliyun import (
    PLUGIN,
    AliyunSmsProvider,
    AliyunSmsSettings,
    aliyun_phone,
    build,
    routes,
)
from sms.providers.aliyun_callbacks import MAX_BYTES
from sms.providers.plugin import CallbackGuard
from tests.fakes.aliyun_sms import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    FakeAliyunSms,
    report_item,
    up_item,
)

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
CODES = {"invitation": "SMS_460775001", "reminder": "SMS_460775002", "help": "SMS_460775003"}
SIGNATURE = "台山12345"
KEY = "aliyun-callback-key-0123456789"
ClientMaker = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


def settings(url: str, **overrides: Any) -> AliyunSmsSettings:
    values: dict[str, Any] = {
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "endpoint": url,
        **overrides,
    }
    return AliyunSmsSettings(_env_file=None, **values)  # type: ignore[call-arg]


def invitation(
    to: str = "13812345678", reference: str = "invite:1", ext: str | None = None
) -> OutboundSms:
    params = {"case_no": "C2026112000001", "link": "pj.example.cn/r/Ab3"}
    return OutboundSms(to, "invitation", params, "【台山12345】…", reference, ext)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyunSms]:
    aliyun = FakeAliyunSms()
    await aliyun.start()
    yield aliyun
    await aliyun.stop()


def make(fake: FakeAliyunSms, **overrides: Any) -> AliyunSmsProvider:
    timeout = overrides.pop("timeout", 5.0)
    return AliyunSmsProvider(
        settings(fake.url, **overrides),
        signature=SIGNATURE,
        template_codes=CODES,
        clock=lambda: NOW,
        connections=8,
        timeout=timeout,
    )


@pytest.fixture
async def provider(fake: FakeAliyunSms) -> AsyncIterator[AliyunSmsProvider]:
    sending = make(fake)
    yield sending
    await sending.close()


async def test_the_fake_sees_what_aliyun_needs(fake: FakeAliyunSms) -> None:
    provider = make(fake, per_message_extensions=True)
    try:
        first = await provider.send(invitation(reference="invite:7", ext="4021"))
        second = await provider.send(invitation("+85251234567", "invite:8"))
        third = await provider.send(OutboundSms("13900001111", "help", {}, "…", "reply:9"))
    finally:
        await provider.close()
    assert fake.refused == []  # every request carried a valid v3 signature
    sent = [r.params for r in fake.requests]
    assert sent[0] == {
        "PhoneNumbers": "13812345678",
        "SignName": SIGNATURE,  # without 【】: Aliyun adds them
        "TemplateCode": "SMS_460775001",
        "TemplateParam": '{"case_no": "C2026112000001", "link": "pj.example.cn/r/Ab3"}',
        "OutId": "invite:7",
        "SmsUpExtendCode": "4021",
    }
    assert sent[1]["PhoneNumbers"] == "85251234567" and "SmsUpExtendCode" not in sent[1]
    assert sent[2]["TemplateCode"] == "SMS_460775003" and "TemplateParam" not in sent[2]
    assert [(r.action, r.version, r.access_key_id) for r in fake.requests] == [
        ("SendSms", "2017-05-25", ACCESS_KEY_ID)
    ] * 3
    assert [first.provider_id, second.provider_id, third.provider_id] == [
        r.biz_id for r in fake.requests
    ]
    assert {first.status, second.status, third.status} == {"sent"}


async def test_extensions_only_where_aliyun_enabled_them(fake: FakeAliyunSms) -> None:
    for overrides in (
        {},
        {"extend_code": "77"},
        {"extend_code": "77", "per_message_extensions": True},
    ):
        provider = make(fake, **overrides)
        try:
            await provider.send(invitation(reference=f"x:{len(overrides)}", ext="4021"))
        finally:
            await provider.close()
    assert [r.params.get("SmsUpExtendCode") for r in fake.requests] == [None, "77", "4021"]


def test_phone_numbers_as_aliyun_wants_them() -> None:
    assert [aliyun_phone(p) for p in ("13812345678", "+8613812345678", "+85251234567")] == [
        "13812345678",
        "13812345678",
        "85251234567",
    ]
    assert aliyun_phone("0085251234567") == "85251234567"


async def test_one_session_bounded_in_flight_and_each_sent_once(fake: FakeAliyunSms) -> None:
    fake.latency = 0.05
    sending = make(fake)  # 8 connections
    try:
        batch = [invitation(f"1380000{n:04d}", f"invite:{n}") for n in range(40)]
        receipts = await asyncio.gather(*(sending.send(m) for m in batch))
        connector = sending.session.connector
        assert connector is not None and len(connector._conns) > 0  # kept alive for reuse
    finally:
        await sending.close()
    assert fake.peak == 8
    assert fake.sent_references() == {f"invite:{n}": 1 for n in range(40)}
    assert len({r.provider_id for r in receipts}) == 40
    assert len({r.peer for r in fake.requests}) <= 8  # 40 sends over the session's 8 connections


async def test_the_sdk_outside_our_sends_keeps_its_own_transport(
    fake: FakeAliyunSms, provider: AliyunSmsProvider
) -> None:
    """The transport wrap is in force only while one of our sends runs."""
    await provider.send(invitation(reference="ours"))
    request = provider.request(invitation(reference="theirs"))
    for _ in range(2):
        response = await provider.client.send_sms_with_options_async(request, provider.runtime)
        assert response.body.code == "OK"
    peers = [r.peer for r in fake.requests]
    assert len(set(peers)) == 3  # the SDK's session per call: a connection each time


async def test_a_cancelled_send_may_be_tried_again(
    fake: FakeAliyunSms, provider: AliyunSmsProvider
) -> None:
    fake.latency = 0.2
    first = asyncio.ensure_future(provider.send(invitation(reference="invite:5")))
    await asyncio.sleep(0.05)
    repeat = asyncio.ensure_future(provider.send(invitation(reference="invite:5")))
    await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(ProviderError, match="did not finish") as waiting:
        await repeat
    assert waiting.value.retryable
    fake.latency = 0.0
    await provider.send(invitation(reference="invite:5"))
    assert fake.sent_references() == {"invite:5": 2}  # the cancelled one may have left


async def test_our_idempotency_one_request_per_reference(
    fake: FakeAliyunSms, provider: AliyunSmsProvider
) -> None:
    fake.latency = 0.05
    same = invitation(reference="invite:42")
    together = await asyncio.gather(provider.send(same), provider.send(same))
    again = await provider.send(same)
    assert together[0] == together[1] == again
    assert fake.sent_references() == {"invite:42": 1}
    fake.fail_next("isv.SYSTEM_ERROR", "系统错误")  # a failed send is not remembered
    with pytest.raises(ProviderError):
        await provider.send(invitation(reference="invite:43"))
    await provider.send(invitation(reference="invite:43"))
    assert fake.sent_references()["invite:43"] == 2


async def test_a_template_without_a_code_is_refused_before_sending(
    fake: FakeAliyunSms, provider: AliyunSmsProvider
) -> None:
    with pytest.raises(ProviderError, match="'confirmation'") as refused:
        await provider.send(OutboundSms("13812345678", "confirmation", {}, "…", "c:1"))
    assert refused.value.retryable is False
    assert fake.requests == []


@pytest.mark.parametrize(
    ("code", "message", "status", "retryable"),
    [
        ("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法", 200, False),
        ("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法", 200, False),
        ("isv.MOBILE_NUMBER_ILLEGAL", "号码格式错误", 200, False),
        ("isv.BLACK_KEY_CONTROL_LIMIT", "黑名单管控", 200, False),
        ("isv.PARAM_NOT_SUPPORT_URL", "不支持URL", 200, False),
        ("isv.DAY_LIMIT_CONTROL", "日发送限额", 200, False),
        ("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10", 200, False),
        ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", 200, True),
        ("isv.AMOUNT_NOT_ENOUGH", "余额不足", 200, True),
        ("isp.SYSTEM_ERROR", "系统错误", 200, True),
        ("Throttling.User", "Request was denied due to user flow control.", 400, True),
        ("ServiceUnavailable", "The request has failed due to a temporary failure.", 503, True),
        ("InvalidParameter", "bad", 400, False),
        ("SomethingNew.NeverSeenBefore", "新", 200, True),
        ("SomethingNew.Server", "新", 500, True),
    ],
)
async def test_errors_are_mapped_and_sent_once(
    fake: FakeAliyunSms,
    provider: AliyunSmsProvider,
    code: str,
    message: str,
    status: int,
    retryable: bool,
) -> None:
    fake.fail_next(code, message, status=status)
    with pytest.raises(ProviderError) as refused:
        await provider.send(invitation())
    assert refused.value.retryable is retryable
    assert str(refused.value) == f"Aliyun SMS answered {code}: {message}"
    assert len(fake.requests) == 1  # no SDK retry


async def test_gateway_refusals_of_our_credentials(fake: FakeAliyunSms) -> None:
    for overrides, code in (
        ({"access_key_secret": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "LTAI5tUnknown"}, "InvalidAccessKeyId.NotFound"),
    ):
        sending = make(fake, **overrides)
        try:
            with pytest.raises(ProviderError, match=code) as refused:
                await sending.send(invitation())
        finally:
            await sending.close()
        assert refused.value.retryable is False
    assert fake.refused == ["SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound"]
    assert fake.requests == []


async def test_network_faults_are_retryable_and_sent_once(fake: FakeAliyunSms) -> None:
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
    assert fake.sent_references() == {"invite:1": 2}  # each send reached Aliyun once


@pytest.mark.parametrize(
    ("status", "body", "content_type", "words"),
    [
        (502, b"<html>bad gateway</html>", "text/html", "unreadable"),
        (200, b"<html>hotel wifi</html>", "text/html", "unreadable"),
        (200, b"{}", "application/json", "without a Code"),
        (200, b'{"Code": "OK", "Message": "OK"}', "application/json", "without a BizId"),
    ],
)
async def test_odd_answers_are_retryable(
    fake: FakeAliyunSms,
    provider: AliyunSmsProvider,
    status: int,
    body: bytes,
    content_type: str | None,
    words: str,
) -> None:
    fake.answer_next(status, body, content_type)
    with pytest.raises(ProviderError, match=words) as odd:
        await provider.send(invitation())
    assert odd.value.retryable


async def test_close_twice_and_start(provider: AliyunSmsProvider) -> None:
    await provider.start(RecordingEvents())
    assert provider.extension("106900012345") is None
    await provider.close()
    await provider.close()


def test_missing_settings_name_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as none:
        AliyunSmsSettings(_env_file=None)  # type: ignore[call-arg]
    assert (
        "PINGJIA_SMS_PROVIDER=aliyun needs ALIBABA_CLOUD_ACCESS_KEY_ID, "
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in str(none.value)
    )
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5t1")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "   ")  # empty counts as missing
    with pytest.raises(ValidationError) as blank:
        AliyunSmsSettings(_env_file=None)  # type: ignore[call-arg]
    assert "needs ALIBABA_CLOUD_ACCESS_KEY_SECRET" in str(blank.value)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "the-secret")
    monkeypatch.setenv("PINGJIA_ALIYUN_SMS_ENDPOINT", "http://127.0.0.1:9000")
    loaded = PLUGIN.read_settings(_env_file=None)
    assert (loaded.access_key_id, loaded.access_key_secret.get_secret_value()) == (
        "LTAI5t1",
        "the-secret",
    )
    assert loaded.endpoint == "http://127.0.0.1:9000" and loaded.extend_code is None
    assert "the-secret" not in repr(loaded)


@pytest.mark.parametrize(
    ("field_name", "value", "variable"),
    [
        ("endpoint", "ftp://127.0.0.1:9000", "PINGJIA_ALIYUN_SMS_ENDPOINT"),
        ("endpoint", "http://127.0.0.1:9000/sms", "PINGJIA_ALIYUN_SMS_ENDPOINT"),
        ("endpoint", "dysmsapi.aliyuncs.com", "PINGJIA_ALIYUN_SMS_ENDPOINT"),
        ("extend_code", "12a", "PINGJIA_ALIYUN_SMS_EXTEND_CODE"),
        ("callback_allow", "203.0.113.7,aliyun", "PINGJIA_ALIYUN_SMS_CALLBACK_ALLOW"),
    ],
)
def test_bad_settings_name_their_variable(field_name: str, value: str, variable: str) -> None:
    with pytest.raises(ValidationError) as bad:
        settings("http://127.0.0.1:9000", **{field_name: value})
    assert variable in str(bad.value) and ACCESS_KEY_SECRET not in str(bad.value)


# Callbacks -------------------------------------------------------------------------------


@dataclass
class RecordingEvents:
    """SmsEvents that records what it is handed; `known` are the BizIds of our messages."""

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
    aiohttp_client: ClientMaker, fake: FakeAliyunSms, allow: str = ""
) -> tuple[TestClient[web.Request, web.Application], RecordingEvents]:
    context = Context("https://pj.example.cn", SIGNATURE, CODES, lambda: NOW, 4)
    provider = build(settings(fake.url), context)
    events = RecordingEvents(known={"1001^0"})
    guard = CallbackGuard(KEY, parse_networks(allow, "ALLOW"), "aliyun")
    app = web.Application()
    app.add_routes(routes(provider, events, guard))

    async def close(_app: web.Application) -> None:
        await provider.close()

    app.on_cleanup.append(close)
    return await aiohttp_client(app), events


REPORT = f"/sms/aliyun/report?key={KEY}"
UP = f"/sms/aliyun/up?key={KEY}"
ACCEPTED = {"code": 0, "msg": "接收成功"}


async def test_delivery_reports(aiohttp_client: ClientMaker, fake: FakeAliyunSms) -> None:
    client, events = await callbacks(aiohttp_client, fake)
    batch = [report_item("1001^0", "invite:1"), report_item("1002^0", success=False)]
    for _ in range(2):  # Aliyun pushes again when unsure: the repeat is answered alike
        response = await client.post(REPORT, json=batch)
        assert response.status == 200
        assert await response.json() == ACCEPTED
    delivered = DeliveryReport("1001^0", "delivered", reference="invite:1")
    failed = DeliveryReport("1002^0", "undelivered", "MK:0005 用户短信未送达")
    assert sorted(r.provider_id for r, _ in events.deliveries) == ["1001^0"] * 2 + ["1002^0"] * 2
    assert {r for r, _ in events.deliveries} == {delivered, failed}
    assert {at for _, at in events.deliveries} == {NOW}
    empty = await client.post(REPORT, json=[])
    assert empty.status == 200 and len(events.deliveries) == 4


async def test_replies(aiohttp_client: ClientMaker, fake: FakeAliyunSms) -> None:
    client, events = await callbacks(aiohttp_client, fake)
    batch = [
        up_item("５ 态度太差", sequence_id=7, dest_code="4021"),
        up_item("TD", sequence_id=8, phone="13900001111"),
        up_item("１", sequence_id=9, phone="85251234567"),
    ]
    for _ in range(2):  # a repeated push
        response = await client.post(UP, json=batch)
        assert response.status == 200 and await response.json() == ACCEPTED
    replies = {reply.dedup_key: reply for reply, _ in events.replies}
    assert len(events.replies) == 6 and set(replies) == {"aliyun-7", "aliyun-8", "aliyun-9"}
    first = replies["aliyun-7"]
    assert (first.sender, first.text, first.extension) == ("13812345678", "５ 态度太差", "4021")
    assert first.sent_at == datetime(2026, 11, 20, 10, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert replies["aliyun-8"].extension is None and replies["aliyun-8"].text == "TD"


BAD_BODIES: list[tuple[bytes, str]] = [
    (b"not json", "not JSON"),
    (b"\xff\xfe[]", "not UTF-8"),
    (b'{"biz_id": "1001^0"}', "JSON array"),
]


@pytest.mark.parametrize(("body", "words"), BAD_BODIES)
@pytest.mark.parametrize("path", [REPORT, UP])
async def test_malformed_bodies(
    aiohttp_client: ClientMaker, fake: FakeAliyunSms, path: str, body: bytes, words: str
) -> None:
    client, events = await callbacks(aiohttp_client, fake)
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "bad_request" and words in error["message"]
    assert events.deliveries == [] and events.replies == []


BAD_REPORTS: list[tuple[Any, str]] = [
    ("1001^0", "not an object"),
    ({**report_item("1001^0"), "success": "maybe"}, "success must be true or false"),
    ({k: v for k, v in report_item("1001^0").items() if k != "success"}, "success must be"),
    ({**report_item("1001^0"), "biz_id": ""}, "biz_id is missing"),
    ({**report_item("1001^0"), "biz_id": ["x"]}, "biz_id must be a string"),
    ({**report_item("1001^0"), "out_id": "x" * 65}, "longer than 64"),
    ({**report_item("1001^0"), "phone_number": "138abc"}, "is not a number"),
    ({**report_item("1001^0"), "report_time": "yesterday"}, "yyyy-MM-dd HH:mm:ss"),
]
BAD_UPS: list[tuple[Any, str]] = [
    ({**up_item("1"), "sequence_id": None}, "sequence_id is missing"),
    ({**up_item("1"), "sequence_id": "abc"}, "sequence_id 'abc' is not a number"),
    ({**up_item("1"), "content": 5.5}, "content must be a string"),
    ({**up_item("1"), "content": "1\x00"}, "holds NUL"),
    ({**up_item("1"), "content": "好" * 1601}, "longer than 1600"),
    ({**up_item("1"), "dest_code": "40a"}, "dest_code '40a' is not digits"),
    ({**up_item("1"), "send_time": "2026/11/20"}, "yyyy-MM-dd HH:mm:ss"),
    ({**up_item("1"), "phone_number": True}, "phone_number must be a string"),
]


@pytest.mark.parametrize(
    ("path", "bad", "words"),
    [(REPORT, item, words) for item, words in BAD_REPORTS]
    + [(UP, item, words) for item, words in BAD_UPS],
)
async def test_bad_items_are_named_and_the_good_ones_kept(
    aiohttp_client: ClientMaker, fake: FakeAliyunSms, path: str, bad: Any, words: str
) -> None:
    client, events = await callbacks(aiohttp_client, fake)
    good = report_item("1001^0") if path == REPORT else up_item("2", sequence_id=11)
    response = await client.post(path, json=[good, bad])
    assert response.status == 400  # Aliyun pushes again; the good item is then a repeat
    error = (await response.json())["error"]
    assert error["code"] == "bad_request", error
    message = error["message"]
    assert "1 items taken, 1 refused: item 1: " in message and words in message, error
    assert len(events.deliveries) + len(events.replies) == 1  # the good item, not lost


async def test_key_allowlist_probes_and_limit(
    aiohttp_client: ClientMaker, fake: FakeAliyunSms
) -> None:
    client, events = await callbacks(aiohttp_client, fake)
    for path in ("/sms/aliyun/report", "/sms/aliyun/up?key=wrong"):
        response = await client.post(path, json=[report_item("1001^0")])
        assert response.status == 404
    probe = await client.get(UP)
    assert probe.status == 200 and await probe.json() == ACCEPTED
    big = b'["' + b"x" * MAX_BYTES + b'"]'
    response = await client.post(REPORT, data=big)
    assert response.status == 413
    assert events.deliveries == [] and events.replies == []
    client, events = await callbacks(aiohttp_client, fake, allow="203.0.113.0/24")
    refused = await client.post(UP, json=[up_item("1")])
    assert refused.status == 403 and events.replies == []
