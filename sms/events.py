"""The SMS service as the `SmsEvents` every provider hands what it hears to.

A delivery report is stored through the service's receipts (never moving a message back); a
reply is stored once per dedup key by the inbox's intake, then handled in the background (or,
with PINGJIA_SMS_REPLIES=queued, by the `sms_inbox` sweep). A reply whose provider gives its
extension apart (Tencent's `extend`) and no address is stored as addressed to `ext:CODE`, which
every provider's `extension()` reads back.
"""

from __future__ import annotations

from datetime import datetime

from sms.intake import Received
from sms.providers import DeliveryReport, InboundReply, reply_address
from sms.service import SmsService


class ServiceEvents:
    """SmsEvents over one SmsService."""

    def __init__(self, sms: SmsService) -> None:
        self.sms = sms

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        return await self.sms.record_status(report.provider_id, report.status, report.error, at)

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        intake = self.sms.inbox.intake
        received = await intake.accept(
            reply.dedup_key, reply.sender, reply_address(reply), reply.text, at
        )
        if isinstance(received, Received) and not intake.queued:
            intake.start(received)  # queued: the `sms_inbox` sweep handles it
