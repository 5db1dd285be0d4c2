"""The sweeps the scheduler drives: invitations, reminders, retries of failed sends.

Sweeps claim their evaluations with FOR UPDATE SKIP LOCKED, commit the claimed rows as
`sending` under their unique dedupe keys (`invitation:<evaluation>`, `reminder:<evaluation>`),
then send outside the transaction through the `Sender`; the next batch is claimed while the
current one is sending (sms/claim_ahead.py). An evaluation rated meanwhile, on any channel and
by an SMS reply before its invitation went out too, is no longer pending: no sweep claims it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from sms.claim_ahead import drain
from sms.context import SmsContext
from sms.log import log
from sms.receipts import MAX_ATTEMPTS
from sms.segments import link_for, new_token
from sms.sending import Claimed, Sender
from sms.storage.models import SmsMessage
from sms.storage.repository import SmsRepository
from sms.storage.sweeps import DueEvaluation, SweepRepository

INVITATION_GRACE = timedelta(minutes=2)  # a rating taken on the call itself cancels the SMS
REMINDER_MIN_GAP = timedelta(hours=12)  # never a reminder right behind its invitation
BATCH = 500
SWEEP_BATCHES = 20  # a sweep claims at most this many batches, so it ends within seconds


class Sweeps:
    """Invitations, reminders and retries; one per SmsService."""

    def __init__(self, ctx: SmsContext, sender: Sender) -> None:
        self.ctx = ctx
        self.sender = sender
        self.batch = BATCH  # evaluations per claim (tests make it small to cross batches)

    async def invitations(self, now: datetime) -> int:
        """Invite every pending evaluation registered more than the grace ago."""
        if self.ctx.quiet(now):
            return 0
        return await self._sweep("invitation", now)

    async def reminders(self, now: datetime) -> int:
        """Remind, once, every evaluation still pending after the profile's delay."""
        if self.ctx.quiet(now) or not self.ctx.profile.reminder.enabled:
            return 0
        return await self._sweep("reminder", now)

    async def retries(self, now: datetime) -> int:
        """Send again the failed invitations and reminders whose retry time has come."""
        if self.ctx.quiet(now):
            return 0
        claimed: list[Claimed] = []
        async with self.sender.claiming, self.ctx.sessions() as session:
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
                claimed.append(self.sender.claimed(row))
            await session.commit()
        return await self.sender.deliver_all(claimed, now)

    async def _sweep(self, kind: str, now: datetime) -> int:
        """Claim and send batch after batch, the next claimed while the current one sends."""

        async def deliver(claimed: Sequence[Claimed]) -> int:
            return await self.sender.deliver_all(claimed, now)

        return await drain(lambda: self._claim_due(kind, now), deliver, max_batches=SWEEP_BATCHES)

    async def _claim_due(self, kind: str, now: datetime) -> list[Claimed]:
        """Claim what is due in one transaction; the rows are committed before anything leaves."""
        async with self.sender.claiming, self.ctx.sessions() as session:
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

    async def _claim(
        self, repo: SweepRepository, due: Sequence[DueEvaluation], kind: str, now: datetime
    ) -> list[Claimed]:
        hashes = [e.phone_hash for e in due if e.phone_hash]
        opted = await repo.opted_out(hashes)
        counts = await repo.started_counts(hashes, *self.ctx.local_day(now))
        # One query for the batch's links and one executemany each for new links and rows:
        # per-row round trips, then ORM loads and flushes, were what capped invitations per
        # second (bench/README.md, SMS).
        tokens = await repo.link_tokens(e.id for e in due)
        links, rows = [], []
        cap = self.ctx.profile.sms.daily_cap
        for evaluation in due:
            phone_hash, phone_enc = evaluation.phone_hash, evaluation.phone_enc
            if not phone_hash or not phone_enc:
                continue
            if counts.get(phone_hash, 0) >= cap:
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
            params = {"case_no": evaluation.case_no, "link": link_for(self.ctx.public_url, token)}
            key = f"{kind}:{evaluation.id}"
            values = self.sender.message_values(
                kind, key, evaluation.id, phone_hash, phone_enc, params, now
            )
            row = SmsMessage(**values)
            if phone_hash in opted:
                row.status, row.error = "suppressed", "number opted out"
            else:
                counts[phone_hash] = counts.get(phone_hash, 0) + 1
            rows.append(row)
        await repo.add_links(links)
        await repo.add_messages(rows)
        return [self.sender.claimed(row) for row in rows if row.status == "sending"]
