"""Sending: a message row's values, what the provider needs of it, and the send itself.

Every message is a row of `sms_messages` committed as `sending` (or `held`) before it leaves
(sms/service.py: at most once). The `Sender` hands claimed rows to the provider with bounded
concurrency (`PINGJIA_SMS_CONCURRENCY` sends in flight per process, shared by the sweeps, the
notices and the answers to replies) and stores their outcomes, a batch's in one executemany.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rating.privacy import mask_phone
from sms.context import SmsContext
from sms.log import log, logs_info
from sms.providers import OutboundSms, ProviderError
from sms.receipts import RETRY_DELAY
from sms.segments import count_segments, render
from sms.storage.inbox import HeldAnswer
from sms.storage.models import SmsMessage
from sms.storage.repository import SmsRepository
from sms.storage.sweeps import SweepRepository

DEFAULT_CONCURRENCY = 128  # sends in flight; PINGJIA_SMS_CONCURRENCY sets it


@dataclass(frozen=True)
class Claimed:
    """A message row committed as `sending`, with what the provider needs."""

    message_id: int
    outbound: OutboundSms


class Sender:
    """Sends claimed rows through the context's provider; one per SmsService."""

    def __init__(self, ctx: SmsContext, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.ctx = ctx
        self._slots = asyncio.Semaphore(concurrency)
        # One claim at a time per process (sweeps, notices); across processes FOR UPDATE SKIP
        # LOCKED separates them on PostgreSQL, and the unique dedupe keys on every database.
        self.claiming = asyncio.Lock()

    def message_values(
        self,
        kind: str,
        dedupe_key: str,
        evaluation_id: int | None,
        phone_hash: str,
        phone_enc: str,
        params: dict[str, str],
        now: datetime,
        template: str | None = None,
    ) -> dict[str, Any]:
        """A new message's values, rendered; the columns not named here are left unset."""
        profile = self.ctx.profile
        template = template or (kind if kind in profile.sms.templates else "help")
        text = render(profile, template, params)
        return {
            "dedupe_key": dedupe_key,
            "kind": kind,
            "evaluation_id": evaluation_id,
            "phone_hash": phone_hash,
            "phone_enc": phone_enc,
            "template": template,
            "params": params,
            "body": text,
            "segments": count_segments(text).count,
            "ext_code": str(evaluation_id) if evaluation_id is not None else None,
            "status": "sending",
            "provider": self.ctx.provider.name,
            "attempts": 1,
            "created_at": now,
        }

    def claimed(self, row: SmsMessage | HeldAnswer, phone: str | None = None) -> Claimed:
        """A committed row as the provider needs it; `phone`: its number, when known."""
        return Claimed(
            row.id,
            OutboundSms(
                to=phone if phone is not None else self.ctx.vault.decrypt(row.phone_enc),
                template=row.template,
                params=dict(row.params),
                text=row.body,
                reference=row.dedupe_key,
                ext_code=row.ext_code,
            ),
        )

    async def deliver_all(self, claimed: Sequence[Claimed], now: datetime) -> int:
        """Send with bounded concurrency, then store every outcome in one transaction; how
        many the provider took."""
        outcomes = await asyncio.gather(*(self._send(c, now) for c in claimed))
        if outcomes:
            async with self.ctx.sessions() as session:
                await SweepRepository(session).update_messages(outcomes)
                await session.commit()
        return sum(1 for _, values in outcomes if values["status"] != "failed")

    async def deliver(self, claimed: Claimed, now: datetime) -> bool:
        """Send one claimed row and store the outcome; True if the provider took it."""
        message_id, values = await self._send(claimed, now)
        async with self.ctx.sessions() as session:
            await SmsRepository(session).update_message(message_id, **values)
            await session.commit()
        return bool(values["status"] != "failed")

    async def _send(self, claimed: Claimed, now: datetime) -> tuple[int, dict[str, Any]]:
        """Hand one message to the provider; the row's new values, to be stored by the caller."""
        reference = claimed.outbound.reference
        async with self._slots:
            try:
                receipt = await self.ctx.provider.send(claimed.outbound)
            except ProviderError as exc:
                retry = self.ctx.profile.quiet_hours.next_allowed(now + RETRY_DELAY)
                phone = mask_phone(claimed.outbound.to)
                log.warning("sms not sent", reference=reference, error=str(exc), phone=phone)
                return claimed.message_id, {
                    "status": "failed",
                    "error": str(exc)[:500],
                    "next_attempt_at": retry if exc.retryable else None,
                    "status_at": now,
                }
        if logs_info():
            log.info("sms sent", reference=reference, phone=mask_phone(claimed.outbound.to))
        return claimed.message_id, {
            "status": receipt.status,
            "provider_sid": receipt.provider_id,
            "sent_at": now,
            "status_at": now,
            "error": None,
        }
