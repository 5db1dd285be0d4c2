"""The SMPP provider against a fake SMSC that speaks real PDUs (tests/fakes/smsc.py).

Bad inputs tried here: a bind refused; submits refused with ESME_RTHROTTLED, ESME_RMSGQFUL,
ESME_RINVDSTADR and a vendor code (0x401); from the SMSC: a command we do not know
(data_sm), a deliver_sm whose sm_length runs past its body, one cut inside its addresses,
a UDH cut short, a receipt with neither id nor stat, a submit_sm_resp for a sequence we
never sent, a header claiming 5 octets (the stream cannot be trusted after it), a receipt
for an id we never sent, enquire_link left unanswered, a dropped link; our own event handler
failing; missing, too long and malformed settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from sms.providers import DeliveryReport, InboundReply, OutboundSms, ProviderError
from sms.providers.smpp import SmppProvider, SmppSettings, build
from tests.fakes.clock import FakeClock
from tests.fakes.smsc import (
    ENQUIRE_LINK,
    GENERIC_NACK,
    SUBMIT_SM,
    UNBIND,
    FakeSmsc,
    deliver_sm_body,
    pdu,
    tlv,
)

SOURCE = "1069012345"
NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
ONE = (
    "【台山12345】您的诉求C2026112000001已办结，请回复1-5评价："
    + "1非常满意2满意3基本满意4不满意5非常不满意"
)
LONG = "【台山12345】" + "您反映的问题已经转交台山市市场监督管理局办理，" * 6 + "感谢您的支持。"


class Events:
    """A recording SmsEvents: what the provider handed on, in order."""

    def __init__(self) -> None:
        self.deliveries: list[DeliveryReport] = []
        self.replies: list[InboundReply] = []
        self.fail = 0  # how many next calls raise, as a database that is down would

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        self._maybe_fail()
        self.deliveries.append(report)
        return True

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        self._maybe_fail()
        self.replies.append(reply)

    def _maybe_fail(self) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database down")


def settings(port: int, **extra: object) -> SmppSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "system_id": "pingjia",
                                 "password": "pw12345", "system_type": "12345",
                                 "source_addr": SOURCE} | extra  # fmt: skip
    return SmppSettings(_env_file=None, **values)  # type: ignore[arg-type]


def message(text: str = ONE, ext: str | None = "0042") -> OutboundSms:
    return OutboundSms("13912345678", "invitation", {}, text, "inv:1", ext)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSmsc]:
    smsc = FakeSmsc()
    await smsc.start()
    yield smsc
    await smsc.stop()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def provider(fake: FakeSmsc, events: Events) -> AsyncIterator[SmppProvider]:
    sending = SmppProvider(settings(fake.port), clock=FakeClock(NOW))
    sending.session.backoff = (0.05, 0.2)
    await sending.start(events)
    await asyncio.wait_for(sending.session.bound.wait(), 5)
    yield sending
    await sending.close()


def submits(fake: FakeSmsc) -> list[dict[str, object]]:
    return [r.fields for r in fake.commands(SUBMIT_SM)]


def receipt_text(smsc_id: str, stat: str, err: str = "000") -> bytes:
    return (
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:2612050930 done date:2612050931 "
        f"stat:{stat} err:{err} text:"
    ).encode()


async def receipt(
    fake: FakeSmsc, smsc_id: str, stat: str, err: str = "000", tlvs: bytes = b""
) -> int:
    text = receipt_text(smsc_id, stat, err)
    body = deliver_sm_body("8613912345678", SOURCE, text, esm_class=0x04, data_coding=0, tlvs=tlvs)
    return await fake.deliver(body)


async def test_binds_as_a_transceiver_and_unbinds_on_close(
    fake: FakeSmsc, provider: SmppProvider
) -> None:
    bind = fake.received[0]
    assert bind.command_id == 0x09
    assert bind.fields == {"system_id": "pingjia", "password": "pw12345", "system_type": "12345"}
    await provider.close()
    await provider.close()  # twice is fine
    assert len(fake.commands(UNBIND)) == 1


async def test_a_chinese_message_of_one_segment(fake: FakeSmsc, provider: SmppProvider) -> None:
    sent = await provider.send(message())
    assert (sent.provider_id, sent.status) == ("a001", "sent")
    [submit] = submits(fake)
    assert submit["data_coding"] == 8 and submit["esm_class"] == 0
    assert submit["registered_delivery"] == 1
    assert submit["short_message"] == ONE.encode("utf-16-be")
    assert (submit["source_addr"], submit["destination_addr"]) == (SOURCE + "0042", "8613912345678")
    assert (submit["dest_ton"], submit["dest_npi"]) == (1, 1)


async def test_a_chinese_message_of_three_segments(fake: FakeSmsc, provider: SmppProvider) -> None:
    assert 134 < len(LONG) <= 201
    sent = await provider.send(message(LONG, ext=None))
    parts = submits(fake)
    assert len(parts) == 3 and sent.provider_id == "a001"  # the first segment's id
    text = ""
    for number, part in enumerate(parts, 1):
        data = part["short_message"]
        assert isinstance(data, bytes)
        assert part["esm_class"] == 0x40 and part["data_coding"] == 8
        assert data[:3] == bytes([5, 0, 3]) and data[4:6] == bytes([3, number])
        assert data[3] == parts[0]["short_message"][3]  # type: ignore[index]
        assert len(data) - 6 == (134 if number < 3 else 2 * (len(LONG) - 134))
        text += data[6:].decode("utf-16-be")
        assert part["source_addr"] == SOURCE
    assert text == LONG


async def test_a_receipt_reports_its_message_once(
    fake: FakeSmsc, provider: SmppProvider, events: Events
) -> None:
    sent = await provider.send(message(LONG))
    assert await receipt(fake, "a002", "DELIVRD") == 0
    assert await receipt(fake, "a001", "DELIVRD") == 0
    assert events.deliveries == []  # a segment is still on its way
    assert await receipt(fake, str(0xA003), "DELIVRD") == 0  # decimal, as some SMSCs write it
    assert events.deliveries == [DeliveryReport(sent.provider_id, "delivered")]
    assert await receipt(fake, "a003", "DELIVRD") == 0  # the SMSC repeats itself
    assert len(events.deliveries) == 1
    alone = await provider.send(message())
    state = tlv(0x001E, alone.provider_id.encode() + b"\0") + tlv(0x0427, b"\x05")
    assert await receipt(fake, "", "", tlvs=state) == 0  # the TLVs alone say it
    assert events.deliveries[1] == DeliveryReport(alone.provider_id, "undelivered", "UNDELIV")
    await receipt(fake, alone.provider_id, "DELIVRD")
    assert len(events.deliveries) == 2  # reported once: a status only moves forward anyway


async def test_a_failed_segment_reports_at_once(
    fake: FakeSmsc, provider: SmppProvider, events: Events
) -> None:
    sent = await provider.send(message(LONG))
    await receipt(fake, "a002", "REJECTD", err="045")
    await receipt(fake, "a001", "ENROUTE")  # not final: nothing to say
    assert events.deliveries == [DeliveryReport(sent.provider_id, "failed", "REJECTD err:045")]
    await receipt(fake, "ffff", "EXPIRED")  # not ours: handed on, the service says unknown
    assert events.deliveries[1] == DeliveryReport("ffff", "undelivered", "EXPIRED err:000")


async def test_replies_in_ucs2_with_an_extension(
    fake: FakeSmsc, provider: SmppProvider, events: Events
) -> None:
    text = "4 办事太慢了"
    body = deliver_sm_body("8613912345678", SOURCE + "0042", text.encode("utf-16-be"))
    assert await fake.deliver(body) == 0
    assert await fake.deliver(body) == 0  # delivered again: same key, the service dedups
    first, again = events.replies
    assert (first.sender, first.text, first.to_address) == ("8613912345678", text, SOURCE + "0042")
    assert first.extension == "0042" and provider.extension(SOURCE) is None
    assert again.dedup_key == first.dedup_key
    other = deliver_sm_body("8613700000000", SOURCE, text.encode("utf-16-be"))
    await fake.deliver(other)
    assert events.replies[2].dedup_key != first.dedup_key and events.replies[2].extension is None


async def test_multipart_and_gbk_replies(
    fake: FakeSmsc, provider: SmppProvider, events: Events
) -> None:
    words = "不满意，" * 30 + "希望改进。"
    data = words.encode("utf-16-be")
    halves = [data[:134], data[134:]]
    for number in (2, 1):  # out of order, as networks deliver them
        udh = bytes([5, 0, 3, 0x7E, 2, number])
        body = deliver_sm_body("8613912345678", SOURCE, udh + halves[number - 1], esm_class=0x40)
        assert await fake.deliver(body) == 0
    gbk = deliver_sm_body("8613912345678", SOURCE, "5 很差".encode("gbk"), data_coding=15)
    assert await fake.deliver(gbk) == 0
    plain = deliver_sm_body("8613912345678", SOURCE, b"TD", data_coding=0)
    await fake.deliver(plain)
    assert [r.text for r in events.replies] == [words, "5 很差", "TD"]


async def test_reconnects_after_the_smsc_drops_the_link(
    fake: FakeSmsc, provider: SmppProvider
) -> None:
    fake.drop()
    await fake.wait_bound(binds=2)
    assert (await provider.send(message())).status == "sent"
    assert provider.session.binds == 2


async def test_sends_while_unbound_fail_soon_and_retryable(
    fake: FakeSmsc, provider: SmppProvider
) -> None:
    provider.session.bind_wait = 0.2
    fake.refuse_bind = 0x0D  # ESME_RBINDFAIL
    fake.drop()
    async with asyncio.timeout(2):
        while provider.session.bound.is_set():  # noqa: ASYNC110 (no event for unbound)
            await asyncio.sleep(0.01)
    with pytest.raises(ProviderError, match="not bound") as unbound:
        await provider.send(message())
    assert unbound.value.retryable
    assert not submits(fake)  # nothing left queued to go out behind the caller's back
    fake.refuse_bind = None
    await fake.wait_bound(binds=2)
    await provider.send(message())
    assert len(submits(fake)) == 1


async def test_enquire_link_when_idle(fake: FakeSmsc, events: Events) -> None:
    sending = SmppProvider(settings(fake.port, enquire_link_s=0.1))
    await sending.start(events)
    try:
        await asyncio.wait_for(sending.session.bound.wait(), 5)
        await asyncio.sleep(0.35)
        assert len(fake.commands(ENQUIRE_LINK)) >= 2
        assert sending.session.binds == 1 and sending.session.bound.is_set()
    finally:
        await sending.close()


async def test_an_unanswered_enquire_link_drops_the_link(fake: FakeSmsc, events: Events) -> None:
    sending = SmppProvider(settings(fake.port, enquire_link_s=0.1))
    sending.session.response_timeout = 0.2
    sending.session.backoff = (0.05, 0.1)
    fake.deaf = True
    await sending.start(events)
    try:
        await fake.wait_bound(binds=2)  # the first link given up, a second one bound
        fake.deaf = False
        assert len(fake.commands(ENQUIRE_LINK)) >= 1
        assert (await sending.send(message())).status == "sent"
    finally:
        await sending.close()


@pytest.mark.parametrize(
    ("status", "name", "retryable"),
    [(0x58, "ESME_RTHROTTLED", True), (0x14, "ESME_RMSGQFUL", True),
     (0x0B, "ESME_RINVDSTADR", False), (0x401, "0x00000401", False)],
)  # fmt: skip
async def test_refused_submits(
    fake: FakeSmsc, provider: SmppProvider, status: int, name: str, retryable: bool
) -> None:
    fake.refusals.append(status)
    with pytest.raises(ProviderError) as refused:
        await provider.send(message())
    assert refused.value.retryable is retryable
    assert str(refused.value) == f"SMSC refused segment 1/1 of inv:1: {name}"
    assert (await provider.send(message())).status == "sent"  # the session lives on


async def test_the_window_and_the_pace(fake: FakeSmsc, events: Events) -> None:
    fake.delay = 0.05
    sending = SmppProvider(settings(fake.port, window=3))
    await sending.start(events)
    try:
        await asyncio.wait_for(sending.session.bound.wait(), 5)
        await asyncio.gather(*(sending.send(message()) for _ in range(10)))
        assert fake.most_outstanding == 3 and len(submits(fake)) == 10
        sending.session.throughput = 20.0  # PINGJIA_SMPP_THROUGHPUT: 20 submits/s at most
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(sending.send(message()) for _ in range(5)))
        assert asyncio.get_running_loop().time() - started >= 4 / 20
    finally:
        await sending.close()


async def test_bad_pdus_from_the_smsc_do_not_end_the_session(
    fake: FakeSmsc, provider: SmppProvider, events: Events
) -> None:
    fake.send_raw(pdu(0x00000103, 0, 77))  # data_sm: not for us
    cut = deliver_sm_body("8613912345678", SOURCE, "好".encode("utf-16-be"))[:-1]
    assert await fake.deliver(cut) == 0x65  # ESME_RX_P_APPN: do not send it again
    assert await fake.deliver(b"\0\1\1861391") == 0x65  # cut inside the source address
    cut_udh = deliver_sm_body("8613912345678", SOURCE, bytes([5, 0, 3, 1]), esm_class=0x40)
    assert await fake.deliver(cut_udh) == 0x65
    no_id = deliver_sm_body("8613912345678", SOURCE, b"stat:", esm_class=0x04)
    assert await fake.deliver(no_id) == 0
    fake.send_raw(pdu(0x80000004, 0, 999_999, b"zzz\0"))  # an answer to nothing we asked
    events.fail = 1
    body = deliver_sm_body("8613912345678", SOURCE, "1".encode("utf-16-be"))
    assert await fake.deliver(body) == 0x64  # ESME_RX_T_APPN: ours failed, try again later
    assert await fake.deliver(body) == 0
    nack = [r for r in fake.received if r.command_id == GENERIC_NACK]
    assert [(r.status, r.sequence) for r in nack] == [(0x03, 77)]
    assert provider.session.binds == 1 and [r.text for r in events.replies] == ["1"]
    assert events.deliveries == []  # the receipt without id or stat said nothing
    assert (await provider.send(message())).status == "sent"
    fake.send_raw(b"\0\0\0\5" + bytes(12))  # a length no PDU has: the stream is lost
    await fake.wait_bound(binds=2)
    assert (await provider.send(message())).status == "sent"


async def test_a_failed_delivery_handler_gets_the_receipt_again(
    fake: FakeSmsc, provider: SmppProvider, events: Events
) -> None:
    sent = await provider.send(message())
    events.fail = 1
    assert await receipt(fake, sent.provider_id, "DELIVRD") == 0x64
    assert await receipt(fake, sent.provider_id, "DELIVRD") == 0
    assert events.deliveries == [DeliveryReport(sent.provider_id, "delivered")]


def test_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "SYSTEM_ID", "PASSWORD", "SOURCE_ADDR", "PORT"):
        monkeypatch.delenv(f"PINGJIA_SMPP_{name}", raising=False)
    with pytest.raises(ValidationError) as missing:
        SmppSettings(_env_file=None)  # type: ignore[call-arg]
    for name in ("HOST", "SYSTEM_ID", "PASSWORD", "SOURCE_ADDR"):
        assert f"PINGJIA_SMPP_{name}\n  Field required" in str(missing.value)
    monkeypatch.setenv("PINGJIA_SMPP_HOST", "smsc.example.cn")
    monkeypatch.setenv("PINGJIA_SMPP_SYSTEM_ID", "a-system-id-too-long")
    monkeypatch.setenv("PINGJIA_SMPP_PASSWORD", "secret")
    monkeypatch.setenv("PINGJIA_SMPP_SOURCE_ADDR", "106-9012")
    with pytest.raises(ValidationError) as bad:
        SmppSettings(_env_file=None)  # type: ignore[call-arg]
    for name in ("SYSTEM_ID", "SOURCE_ADDR"):
        assert f"PINGJIA_SMPP_{name}\n" in str(bad.value)
    monkeypatch.setenv("PINGJIA_SMPP_SYSTEM_ID", "pingjia")
    monkeypatch.setenv("PINGJIA_SMPP_SOURCE_ADDR", SOURCE)
    loaded = SmppSettings(_env_file=None)  # type: ignore[call-arg]
    assert (loaded.port, loaded.enquire_link_s, loaded.throughput) == (2775, 30.0, None)


async def test_build_takes_the_context_clock() -> None:
    class Context:
        public_url, signature, template_codes, connections = "https://x", "台山12345", {}, 10
        clock = FakeClock(NOW)

    built = build(settings(2775), Context())
    assert built.name == "smpp" and built.clock() == NOW
    await built.close()
