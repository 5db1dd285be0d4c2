"""The SMS service: invitations and reminders (idempotent sweeps), replies, delivery status.

Every message is a row in `sms_messages` before it leaves, under a unique `dedupe_key`
(`invitation:<evaluation>`, `reminder:<evaluation>`, `reply:<MessageSid>`, `help:<number>:<day>`),
so no sweep, retry or second process can send it twice (sms/sending.py, sms/sweeps.py).

The service only wires the modules over one `SmsContext` (sms/context.py) and is the face the
rest of pingjia sees: the sweeps the scheduler drives, the generic `send`, and the
`SmsEvents` a provider hands what it hears (`delivery`, `reply`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.policy.profile import Profile
from rating.privacy import PhoneVault
from rating.ratings.second_rating import SecondRatings
from rating.ratings.service import RatingService
from sms.context import SmsContext
from sms.log import log
from sms.notices import Audience, Notices, Outcome
from sms.providers import DeliveryReport, InboundReply, SmsEvents, SmsProvider
from sms.receipts import record_receipt
from sms.replies.pipeline import ReplyPipeline
from sms.replies.stage1_intake import Received
from sms.segments import check_templates
from sms.sending import DEFAULT_CONCURRENCY, Sender
from sms.sweeps import Sweeps


class SmsService:
    """Built once by the composition root; the scheduler calls its sweeps, providers its
    events (it implements `sms.providers.SmsEvents`)."""

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
        self.ctx = SmsContext(
            sessions, profile, vault, provider, ratings, public_url.rstrip("/"), second
        )
        self.sender = Sender(self.ctx, concurrency)
        self.sweeps = Sweeps(self.ctx, self.sender)
        self.notices = Notices(self.ctx, self.sender)
        self.inbox = ReplyPipeline(self.ctx, self.sender)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.ctx.sessions

    @property
    def profile(self) -> Profile:
        return self.ctx.profile

    @property
    def provider(self) -> SmsProvider:
        return self.ctx.provider

    @provider.setter
    def provider(self, provider: SmsProvider) -> None:
        """Swap the provider before anything is sent (a benchmark's own gateway)."""
        self.ctx.provider = provider

    @property
    def public_url(self) -> str:
        return self.ctx.public_url

    @property
    def batch(self) -> int:
        """Evaluations per sweep claim (tests make it small to cross batches)."""
        return self.sweeps.batch

    @batch.setter
    def batch(self, size: int) -> None:
        self.sweeps.batch = size

    # --- the sweeps the scheduler drives --------------------------------------------------------

    async def send_due_invitations(self, now: datetime) -> int:
        """Invite every pending evaluation registered more than the grace ago."""
        return await self.sweeps.invitations(now)

    async def send_due_reminders(self, now: datetime) -> int:
        """Remind, once, every evaluation still pending after the profile's delay."""
        return await self.sweeps.reminders(now)

    async def retry_failed(self, now: datetime) -> int:
        """Send again the failed invitations and reminders whose retry time has come."""
        return await self.sweeps.retries(now)

    async def release_notices(self, now: datetime) -> int:
        """Sweep: notices held for quiet hours or the cap, and failed ones due for a retry."""
        return await self.notices.release_due(now)

    async def send_second_invitations(self, now: datetime) -> int:
        """Sweep: invitations to rate again (追评) after a bad rating's ticket closed."""
        return await self.notices.send_second_invitations(now)

    # --- what other parts ask for ---------------------------------------------------------------

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

    # --- what providers hear (SmsEvents) --------------------------------------------------------

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        """Record a delivery report in our vocabulary; False when no message has that id."""
        return await self.record_status(report.provider_id, report.status, report.error, at)

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        """Store a citizen's reply once per dedup key and have it handled: in the background
        now, or (PINGJIA_SMS_REPLIES=queued) by the `sms_inbox` sweep."""
        intake = self.inbox.intake
        received = await intake.accept(
            reply.dedup_key,
            reply.sender,
            reply.to_address,
            reply.text,
            at,
            extension=reply.extension,
        )
        if isinstance(received, Received) and not intake.queued:
            intake.start(received)
        elif not isinstance(received, Received):
            log.info("sms reply not handled", key=reply.dedup_key, outcome=received.outcome)

    async def record_status(
        self, provider_sid: str, status: str, error_code: str | None, now: datetime
    ) -> bool:
        """Store a delivery receipt (sms/receipts.py). False: unknown sid."""
        return await record_receipt(
            self.ctx.sessions, self.ctx.profile, provider_sid, status, error_code, now
        )


def as_events(service: SmsService) -> SmsEvents:
    """The service as the `SmsEvents` a provider's callbacks or session are started with
    (mypy checks here that the service implements the protocol)."""
    return service
