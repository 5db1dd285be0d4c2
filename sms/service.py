"""The SMS service: invitations and reminders (idempotent sweeps), replies, delivery status.

Every message is a row in `sms_messages` before it leaves, under a unique `dedupe_key`
(`invitation:<evaluation>`, `reminder:<evaluation>`, `reply:<MessageSid>`, `help:<number>:<day>`),
so no sweep, retry or second process can send it twice. Sweeps claim their evaluations with
FOR UPDATE SKIP LOCKED, commit the claimed rows, then send outside the transaction with
bounded concurrency (`PINGJIA_SMS_CONCURRENCY` sends in flight per process); the next batch is
claimed while the current one is sending (sms/pipeline.py).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.policy.profile import Profile
from rating.privacy import PhoneVault, mask_phone
from rating.ratings.second_rating import SecondRatings
from rating.ratings.service import RatingService
from sms.answers import logs_info
from sms.inbound import Inbox
from sms.notices import Audience, Notices, Outcome
from sms.pipeline import drain
from sms.providers import OutboundSms, ProviderError, SmsProvider
from sms.receipts import MAX_ATTEMPTS, RETRY_DELAY, record_receipt
from sms.segments import TOKEN_LENGTH, check_templates, count_segments, link_for, render
from sms.storage.inbox import HeldAnswer
from sms.storage.models import SmsMessage
from sms.storage.repository import SmsRepository
from sms.storage.sweeps import DueEvaluation, SweepRepository

log = structlog.get_logger("pingjia.sms")
Clock = Callable[[], datetime]

INVITATION_GRACE = timedelta(minutes=2)  # a rating taken on the call itself cancels the SMS
REMINDER_MIN_GAP = timedelta(hours=12)  # never a reminder right behind its invitation
BATCH = 500
SWEEP_BATCHES = 20  # a sweep claims at most this many batches, so it ends within seconds
DEFAULT_CONCURRENCY = 128  # sends in flight; PINGJIA_SMS_CONCURRENCY sets it


@dataclass(frozen=True)
class Claimed:
    """A message row committed as `sending`, with what the provider needs."""

    message_id: int
    outbound: OutboundSms


def new_token() -> str:
    """A link token: 12 URL-safe characters, 72 random bits."""
    return secrets.token_urlsafe(TOKEN_LENGTH * 3 // 4)


class SmsService:
    """Built once by the composition root; the scheduler calls its sweeps."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        profile: Profile,
        vault: PhoneVault,
        provider: SmsProvider,
        ratings: RatingService,
        public_url: str,
        *,
        second: SecondRatings | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        check_templates(profile, public_url)
        self.sessions = sessions
        self.profile = profile
        self.vault = vault
        self.provider = provider
        self.ratings = ratings
        self.public_url = public_url.rstrip("/")
        self._slots = asyncio.Semaphore(concurrency)
        self.batch = BATCH  # evaluations per claim (tests make it small to cross batches)
        self.second = second  # 追评: invitations sent and replies stored through it
        self.inbox = Inbox(self)
        self.notices = Notices(self)
        # One claim at a time per process; across processes FOR UPDATE SKIP LOCKED separates
        # them on PostgreSQL, and the unique dedupe keys on every database.
        self._claiming = asyncio.Lock()

    # --- the sweeps the scheduler drives --------------------------------------------------------

    async def send_due_invitations(self, now: datetime) -> int:
        """Invite every pending evaluation registered more than the grace ago."""
        if self._quiet(now):
            return 0
        return await self._sweep("invitation", now)

    async def send_due_reminders(self, now: datetime) -> int:
        """Remind, once, every evaluation still pending after the profile's delay."""
        if self._quiet(now) or not self.profile.reminder.enabled:
            return 0
        return await self._sweep("reminder", now)

    async def retry_failed(self, now: datetime) -> int:
        """Send again the failed invitations and reminders whose retry time has come."""
        if self._quiet(now):
            return 0
        claimed: list[Claimed] = []
        async with self._claiming, self.sessions() as session:
            repo = SmsRepository(session)
            rows = await repo.due_retries(now, MAX_ATTEMPTS, BATCH)
            opted = await repo.opted_out(r.phone_hash for r in rows)
            for row in rows:
                pending = row.evaluation_id is not None and (
                    await repo.evaluation_status(row.evaluation_id) == "pending"
                )
                if row.phone_hash in opted or not pending:
                    await repo.update_message(row.id, next_attempt_at=None)
                    continue
                await repo.update_message(row.id, status="sending", attempts=row.attempts + 1)
                claimed.append(Claimed(row.id, self._outbound(row)))
            await session.commit()
        return await self._deliver_all(claimed, now)

    async def send(
        self,
        phone: str,
        template_id: str,
        params: dict[str, str],
        *,
        key: str,
        now: datetime,
        audience: Audience = "staff",
        urgent: bool = False,
    ) -> Outcome:
        """Send a template to a number once per `key` (sms/notices.py: which rules apply)."""
        return await self.notices.send(
            phone,
            template_id,
            params,
            key=key,
            now=now,
            audience=audience,
            urgent=urgent,
            kind="alert" if audience == "staff" else "notice",
        )

    async def release_notices(self, now: datetime) -> int:
        """Sweep: notices held for quiet hours or the cap, and failed ones due for a retry."""
        return await self.notices.release_due(now)

    async def send_second_invitations(self, now: datetime) -> int:
        """Sweep: invitations to rate again (追评) after a bad rating's ticket closed."""
        return await self.notices.send_second_invitations(now)

    # --- claiming and delivering ---------------------------------------------------------------

    async def _sweep(self, kind: str, now: datetime) -> int:
        """Claim and send batch after batch, the next claimed while the current one sends."""

        async def deliver(claimed: Sequence[Claimed]) -> int:
            return await self._deliver_all(claimed, now)

        return await drain(lambda: self._claim_due(kind, now), deliver, max_batches=SWEEP_BATCHES)

    async def _claim_due(self, kind: str, now: datetime) -> list[Claimed]:
        """Claim what is due in one transaction; the rows are committed before anything leaves."""
        async with self._claiming, self.sessions() as session:
            repo = SweepRepository(session)
            try:
                if kind == "invitation":
                    due = await repo.due_invitations(now - INVITATION_GRACE, now, self.batch)
                else:
                    due = await repo.due_reminders(now - REMINDER_MIN_GAP, now, self.batch)
                claimed = await self._claim(repo, due, kind, now)
                await session.commit()
            except IntegrityError:
                # Another process claimed some of these first (SQLite has no SKIP LOCKED);
                # what is still due is claimed by the next sweep.
                await session.rollback()
                log.info("sms sweep yielded to another process", kind=kind)
                return []
        return claimed

    def _quiet(self, now: datetime) -> bool:
        return self.profile.quiet_hours.next_allowed(now) != now

    def _day(self, now: datetime) -> tuple[datetime, datetime]:
        """The local day of `now`, in UTC bounds: the daily cap counts per local day."""
        tz = self.profile.tz
        start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        return start, start + timedelta(days=1)

    async def _claim(
        self, repo: SweepRepository, due: Sequence[DueEvaluation], kind: str, now: datetime
    ) -> list[Claimed]:
        hashes = [e.phone_hash for e in due if e.phone_hash]
        opted = await repo.opted_out(hashes)
        counts = await repo.started_counts(hashes, *self._day(now))
        # One query for the batch's links and one executemany each for new links and rows:
        # per-row round trips, then ORM loads and flushes, were what capped invitations per
        # second (bench/README.md, SMS).
        tokens = await repo.link_tokens(e.id for e in due)
        links, rows = [], []
        for evaluation in due:
            phone_hash, phone_enc = evaluation.phone_hash, evaluation.phone_enc
            if not phone_hash or not phone_enc:
                continue
            if counts.get(phone_hash, 0) >= self.profile.sms.daily_cap:
                continue  # stays due: goes out on a later day
            token = tokens.get(evaluation.id)
            if token is None:
                token = tokens[evaluation.id] = new_token()
                links.append(
                    {
                        "token": token,
                        "evaluation_id": evaluation.id,
                        "created_at": now,
                        "expires_at": evaluation.default_due_at,
                    }
                )
            params = {"case_no": evaluation.case_no, "link": link_for(self.public_url, token)}
            key = f"{kind}:{evaluation.id}"
            row = SmsMessage(
                **self._fields(kind, key, evaluation.id, phone_hash, phone_enc, params, now)
            )
            if phone_hash in opted:
                row.status, row.error = "suppressed", "number opted out"
            else:
                counts[phone_hash] = counts.get(phone_hash, 0) + 1
            rows.append(row)
        await repo.add_links(links)
        await repo.add_messages(rows)
        return [Claimed(row.id, self._outbound(row)) for row in rows if row.status == "sending"]

    def _fields(
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
        template = template or (kind if kind in self.profile.sms.templates else "help")
        text = render(self.profile, template, params)
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
            "provider": self.provider.name,
            "attempts": 1,
            "created_at": now,
        }

    def _outbound(self, row: SmsMessage | HeldAnswer, phone: str | None = None) -> OutboundSms:
        """What the provider needs of a row; `phone`: its number, when the caller knows it."""
        return OutboundSms(
            to=phone if phone is not None else self.vault.decrypt(row.phone_enc),
            template=row.template,
            params=dict(row.params),
            text=row.body,
            reference=row.dedupe_key,
            ext_code=row.ext_code,
        )

    async def _deliver_all(self, claimed: Sequence[Claimed], now: datetime) -> int:
        """Send with bounded concurrency, then store every outcome in one transaction."""
        outcomes = await asyncio.gather(*(self._send(c, now) for c in claimed))
        if outcomes:
            async with self.sessions() as session:
                await SweepRepository(session).update_messages(outcomes)
                await session.commit()
        return sum(1 for _, values in outcomes if values["status"] != "failed")

    async def _deliver(self, claimed: Claimed, now: datetime) -> bool:
        """Send one claimed row and store the outcome; True if the provider took it."""
        message_id, values = await self._send(claimed, now)
        async with self.sessions() as session:
            await SmsRepository(session).update_message(message_id, **values)
            await session.commit()
        return bool(values["status"] != "failed")

    async def _send(self, claimed: Claimed, now: datetime) -> tuple[int, dict[str, Any]]:
        """Hand one message to the provider; the row's new values, to be stored by the caller."""
        reference = claimed.outbound.reference
        async with self._slots:
            try:
                receipt = await self.provider.send(claimed.outbound)
            except ProviderError as exc:
                retry = self.profile.quiet_hours.next_allowed(now + RETRY_DELAY)
                phone = mask_phone(claimed.outbound.to)
                log.warning("sms not sent", reference=reference, error=str(exc), phone=phone)
                return claimed.message_id, {
                    "status": "failed",
                    "error": str(exc)[:500],
                    "next_attempt_at": retry if exc.retryable else None,
                    "status_at": now,
                }
        if logs_info():  # a line dropped by its level still cost ~20 µs to build
            log.info("sms sent", reference=reference, phone=mask_phone(claimed.outbound.to))
        return claimed.message_id, {
            "status": receipt.status,
            "provider_sid": receipt.provider_id,
            "sent_at": now,
            "status_at": now,
            "error": None,
        }

    async def record_status(
        self, provider_sid: str, status: str, error_code: str | None, now: datetime
    ) -> bool:
        """Store a delivery receipt (sms/receipts.py). False: unknown sid."""
        return await record_receipt(self, provider_sid, status, error_code, now)
