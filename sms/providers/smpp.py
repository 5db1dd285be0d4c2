"""An operator's or aggregator's SMPP 3.4 gateway behind a 106 number (PLATFORM.md).

One transceiver session (sms/smpp/session.py) carries our submits and brings back receipts
and replies as deliver_sm. Text goes as UCS-2 (data_coding 8): 70 characters alone, 67 per
segment behind a concatenation UDH. The source address is our 106 number plus the message's
extension (扩展码), so a reply to that extension comes back to it; the destination is the
international form `86…` (TON 1, NPI 1) unless the carrier wants national numbers
(`PINGJIA_SMPP_DEST_FORMAT=national`: the number as we hold it, TON 0, NPI 0).

The SendReceipt carries the FIRST segment's message_id; every segment's id maps to the
message, so a receipt of any segment reports it once (sms/smpp/inbound.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import structlog
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sms.providers import (
    BuildContext,
    InboundReply,
    OutboundSms,
    ProviderError,
    SendReceipt,
    SmsEvents,
)
from sms.providers.plugin import ProviderPlugin
from sms.smpp import pdu
from sms.smpp.inbound import STATS, Receipts, Replies, read_receipt
from sms.smpp.pdu import Address, ShortMessage
from sms.smpp.session import Session, SessionError
from sms.smpp.text import UCS2, ucs2_segments

log = structlog.get_logger("pingjia.sms")

# A refusal worth trying again later: the SMSC is busy or the session was not bound.
RETRYABLE = frozenset(
    {pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL, pdu.ESME_RINVBNDSTS, pdu.ESME_RSYSERR,
     pdu.ESME_RX_T_APPN}
)  # fmt: skip


def _env(name: str) -> AliasChoices:
    # The variable's own name first: a missing or bad value is reported under it.
    return AliasChoices(f"PINGJIA_SMPP_{name.upper()}", name)


class SmppSettings(BaseSettings):
    """PINGJIA_SMPP_*: where the gateway is, how we log in, which number we send from."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    host: str = Field(validation_alias=_env("host"), min_length=1)
    port: int = Field(2775, validation_alias=_env("port"), gt=0, lt=65536)
    system_id: str = Field(validation_alias=_env("system_id"), min_length=1, max_length=15)
    password: str = Field(validation_alias=_env("password"), max_length=8)
    system_type: str = Field("", validation_alias=_env("system_type"), max_length=12)
    source_addr: str = Field(validation_alias=_env("source_addr"), pattern=r"^\d{3,20}$")
    enquire_link_s: float = Field(30.0, validation_alias=_env("enquire_link_s"), gt=0)
    throughput: float | None = Field(None, validation_alias=_env("throughput"), gt=0)
    window: int = Field(64, validation_alias=_env("window"), gt=0)
    dest_format: Literal["international", "national"] = Field(
        "international", validation_alias=_env("dest_format")
    )


def destination(phone: str, form: str) -> Address:
    """The number as the SMSC expects it: `86…` international (a landline drops its 0)."""
    if form == "national":
        return Address(phone.lstrip("+"))
    if phone.startswith("+"):
        return Address(phone[1:], ton=1, npi=1)
    return Address("86" + (phone[1:] if phone.startswith("0") else phone), ton=1, npi=1)


class SmppProvider:
    """Sends over an SMPP transceiver session; `start(events)` binds it."""

    name = "smpp"

    def __init__(
        self, settings: SmppSettings, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.session = Session(
            settings.host,
            settings.port,
            settings.system_id,
            settings.password,
            settings.system_type,
            on_deliver=self._on_deliver,
            enquire_link_s=settings.enquire_link_s,
            window=settings.window,
            throughput=settings.throughput,
        )
        self.receipts = Receipts()
        self.replies = Replies()
        self._events: SmsEvents | None = None
        self._reference = 0

    async def start(self, events: SmsEvents) -> None:
        """Bind in the background; receipts and replies go to `events` from now on."""
        self._events = events
        await self.session.start()

    async def send(self, message: OutboundSms) -> SendReceipt:
        source = Address(self.settings.source_addr + (message.ext_code or ""))
        dest = destination(message.to, self.settings.dest_format)
        self._reference = (self._reference + 1) & 0xFF
        segments = ucs2_segments(message.text, self._reference)
        esm_class = pdu.ESM_UDHI if len(segments) > 1 else 0
        ids: list[str] = []
        for number, segment in enumerate(segments, 1):
            body = pdu.submit_sm(source, dest, segment, esm_class=esm_class, data_coding=UCS2)
            where = f"segment {number}/{len(segments)} of {message.reference}"
            try:
                answer = await self.session.submit(body)
            except SessionError as exc:
                raise ProviderError(f"SMPP {where}: {exc}", retryable=True) from None
            if answer.status != pdu.ESME_ROK or answer.command_id != pdu.SUBMIT_SM_RESP:
                raise ProviderError(
                    f"SMSC refused {where}: {pdu.status_name(answer.status)}",
                    retryable=answer.status in RETRYABLE,
                )
            ids.append(pdu.message_id(answer.body))
        self.receipts.sent(ids)
        return SendReceipt(ids[0], "sent")

    def extension(self, to_address: str) -> str | None:
        rest = to_address[len(self.settings.source_addr) :]
        if to_address.startswith(self.settings.source_addr) and rest.isdigit():
            return rest
        return None

    async def close(self) -> None:
        await self.session.close()

    async def _on_deliver(self, message: ShortMessage) -> None:
        """A receipt or a handset message; raising makes the SMSC deliver it again later."""
        events = self._events
        if events is None:
            raise RuntimeError("deliver_sm before start(events)")
        if message.is_receipt:
            receipt = read_receipt(message)
            if receipt is None:
                log.warning("smpp receipt without id or stat", text=message.payload[:80])
                return
            report = self.receipts.settle(receipt)
            if report is None:
                return
            try:
                known = await events.delivery(report, self.clock())
            except BaseException:
                self.receipts.unsettle(receipt)
                raise
            if not known:
                log.info("smpp receipt for no message of ours", provider_id=report.provider_id)
            return
        now = self.clock()
        mo = self.replies.take(message, now)
        if mo is not None:
            reply = InboundReply(
                mo.dedup_key, mo.sender, mo.text, mo.to_address, self.extension(mo.to_address)
            )
            await events.reply(reply, now)


def build(settings: SmppSettings, context: BuildContext) -> SmppProvider:
    """The registry's builder: the SMPP provider on the context's clock."""
    return SmppProvider(settings, clock=context.clock)


# Receipts and replies come on the session (deliver_sm): no HTTP callbacks. Status words: the
# receipts' final `stat:` words (ENROUTE, ACCEPTD are not final and map to nothing).
PLUGIN = ProviderPlugin(
    name="smpp",
    settings=SmppSettings,
    build=build,
    status_words={word: status for word, status in STATS.items() if status is not None},
)
