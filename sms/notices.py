"""Messages other parts ask for: `SmsService.send` and the sweeps that finish its work.

A notice is a template id plus parameters to one number, under a caller's key (`alert:<id>`,
`second:<invite id>`): a row of `sms_messages` with that unique key is committed before
anything leaves, so a second call, a second sweep or a second process sends nothing.

Two audiences, two rule sets:
- **citizen** (second-rating invitations): opted-out numbers are suppressed, the daily cap
  counts them, and they wait out quiet hours, like invitations and reminders;
- **staff** (deadline alerts to an agency's contact): not citizen messages, so no opt-out list
  and no citizen cap; they still wait out quiet hours (an alert about tomorrow's deadline can
  wait for the morning), except when `urgent` (the "after" alert: the ticket is overdue).

A held notice is stored as `held` with its release time in `next_attempt_at`; the
`sms_notices` sweep sends it then, and retries a failed one once like invitations.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError

from rating.privacy import mask_phone, normalize_phone
from sms.context import SmsContext
from sms.log import log
from sms.sending import Claimed, Sender
from sms.storage.models import SmsMessage
from sms.storage.notices import NoticeRepository
from sms.storage.repository import SmsRepository

Audience = Literal["citizen", "staff"]
# What `send` did: sent (the provider took it), held (goes out later), failed, suppressed
# (opted out), duplicate (this key was sent or held before).
Outcome = Literal["sent", "held", "failed", "suppressed", "duplicate"]
MAX_ATTEMPTS = 2
BATCH = 500
CITIZEN_NOTICES = ("second_invite", "notice")


class Notices:
    """The generic send and its sweep; built by SmsService over its context and sender."""

    def __init__(self, ctx: SmsContext, sender: Sender) -> None:
        self.ctx = ctx
        self.sender = sender
        self.profile = ctx.profile

    async def send(
        self,
        phone: str,
        template_id: str,
        params: dict[str, str],
        *,
        key: str,
        now: datetime,
        kind: str = "alert",
        audience: Audience = "staff",
        urgent: bool = False,
        evaluation_id: int | None = None,
    ) -> Outcome:
        """Send one notice at most once per `key`; see the module docstring for the rules."""
        if template_id not in self.profile.sms.templates:
            raise ValueError(f"profile {self.profile.name} has no SMS template {template_id!r}")
        number = normalize_phone(phone)
        vault = self.ctx.vault
        fields = self.sender.message_values(
            kind,
            key,
            evaluation_id,
            vault.lookup_hash(number),
            vault.encrypt(number),
            params,
            now,
            template=template_id,
        )
        row = SmsMessage(**fields)
        # Citizens may answer a second-rating invitation by the extension code; staff do not.
        row.ext_code = str(evaluation_id) if audience == "citizen" and evaluation_id else None
        async with self.ctx.sessions() as session:
            await self._decide(SmsRepository(session), row, audience, urgent, now)
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                return "duplicate"
        if row.status == "held":
            log.info(
                "sms held",
                reference=key,
                until=row.next_attempt_at.isoformat() if row.next_attempt_at else None,
            )
        if row.status != "sending":
            return "held" if row.status == "held" else "suppressed"
        return "sent" if await self.sender.deliver(self.sender.claimed(row), now) else "failed"

    async def _decide(
        self, repo: SmsRepository, row: SmsMessage, audience: Audience, urgent: bool, now: datetime
    ) -> None:
        """Suppress, hold, or let the row go now (status `sending`)."""
        release = now
        if audience == "citizen":
            if await repo.opted_out([row.phone_hash]):
                row.status, row.error = "suppressed", "number opted out"
                return
            day = self.ctx.local_day(now)
            counts = await repo.started_counts([row.phone_hash], *day)
            if counts.get(row.phone_hash, 0) >= self.profile.sms.daily_cap:
                release = day[1]  # the cap is per local day: tomorrow
        if not (audience == "staff" and urgent):
            release = self.profile.quiet_hours.next_allowed(release)
        if release > now:
            row.status, row.attempts, row.next_attempt_at = "held", 0, release

    async def release_due(self, now: datetime) -> int:
        """The `sms_notices` sweep: send held notices whose time came, retry failed ones."""
        if self.ctx.quiet(now):
            return 0  # urgent notices are never held, so nothing held may go at night
        claimed: list[Claimed] = []
        async with self.sender.claiming, self.ctx.sessions() as session:
            repo = SmsRepository(session)
            rows = await NoticeRepository(session).claim_due(now, MAX_ATTEMPTS, BATCH)
            # Answers to a citizen's own message (sms/replies/stage5_answers.py) go even to an
            # opted-out number (the opt-out's own confirmation), as when the pipeline sends them.
            citizens = [r.phone_hash for r in rows if r.kind in CITIZEN_NOTICES]
            opted = await repo.opted_out(citizens)
            for row in rows:
                if row.kind in CITIZEN_NOTICES and row.phone_hash in opted:
                    values = {"status": "suppressed", "error": "number opted out"}
                    await repo.update_message(row.id, next_attempt_at=None, **values)
                    continue
                await repo.update_message(
                    row.id, status="sending", attempts=row.attempts + 1, next_attempt_at=None
                )
                claimed.append(self.sender.claimed(row))
            await session.commit()
        return await self.sender.deliver_all(claimed, now)

    async def send_second_invitations(self, now: datetime) -> int:
        """The `sms_second_invitations` sweep: invite to rate again (追评) after a ticket
        closed; quiet hours, the cap and opt-outs apply as to every citizen message."""
        second = self.ctx.second
        if second is None:
            return 0
        invitations = await second.due_invitations(now)

        async def invite(invite_id: int, evaluation_id: int, case_no: str, phone: str) -> bool:
            outcome = await self.send(
                phone,
                "second_invitation",
                {"case_no": case_no},
                key=f"second:{invite_id}",
                now=now,
                kind="second_invite",
                audience="citizen",
                evaluation_id=evaluation_id,
            )
            await second.mark_sent(invite_id, now)
            log.info(
                "second rating invitation",
                case_no=case_no,
                outcome=outcome,
                phone=mask_phone(phone),
            )
            return outcome in ("sent", "held")

        jobs = []
        for item in invitations:
            if item.phone is None:  # no number to ask: the invitation is spent
                await second.mark_sent(item.invite_id, now)
                continue
            jobs.append(invite(item.invite_id, item.evaluation_id, item.case_no, item.phone))
        return sum(await asyncio.gather(*jobs))
