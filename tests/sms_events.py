"""`ServiceEvents`: SmsEvents over the SMS service, as the Twilio webhook hands it replies.

Used by the Aliyun flow test and bench/aliyun_sms_bench.py until `SmsService` implements
SmsEvents itself (the opened-up SMS part); then they pass the service and this module goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sms.intake import Received
from sms.providers import DeliveryReport, InboundReply
from sms.service import SmsService


@dataclass
class ServiceEvents:
    """A report is stored as a Twilio status is; a reply is stored, then handled."""

    sms: SmsService

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        return await self.sms.record_status(report.provider_id, report.status, report.error, at)

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        intake = self.sms.inbox.intake
        received = await intake.accept(reply.dedup_key, reply.sender, "", reply.text, at)
        if isinstance(received, Received) and not intake.queued:
            intake.start(received)
