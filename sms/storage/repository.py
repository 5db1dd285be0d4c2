"""Queries of the SMS part: due invitations and reminders, caps, opt-outs, replies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from rating.cases.models import Evaluation, Rating
from rating.consent.repository import ConsentRepository
from rating.db.records import SessionRepository
from sms.storage.models import CAPPED_KINDS, STARTED_KINDS, SmsInbound, SmsMessage


class SmsRepository(SessionRepository):
    """Named queries over one session; the caller owns the transaction. The invitation and
    reminder sweeps' claims are in sms/storage/sweeps.py."""

    # --- retries: rows are claimed with FOR UPDATE SKIP LOCKED (ignored by SQLite) ------------

    async def due_retries(
        self, now: datetime, max_attempts: int, limit: int
    ) -> Sequence[SmsMessage]:
        """Failed messages we started, due for their retry."""
        query = (
            select(SmsMessage)
            .where(
                SmsMessage.status.in_(("failed", "undelivered")),
                SmsMessage.kind.in_(STARTED_KINDS),
                SmsMessage.attempts < max_attempts,
                SmsMessage.next_attempt_at <= now,
            )
            .order_by(SmsMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def evaluation_status(self, evaluation_id: int) -> str | None:
        result = await self.session.execute(
            select(Evaluation.status).where(Evaluation.id == evaluation_id)
        )
        return result.scalar_one_or_none()

    # --- caps and opt-outs ---------------------------------------------------------------------

    async def started_counts(
        self, hashes: Iterable[str], start: datetime, end: datetime
    ) -> dict[str, int]:
        """Messages we started to each number in [start, end) (the cap's local day)."""
        wanted = list(set(hashes))
        if not wanted:
            return {}
        query = (
            select(SmsMessage.phone_hash, func.count())
            .where(
                SmsMessage.phone_hash.in_(wanted),
                SmsMessage.kind.in_(CAPPED_KINDS),
                SmsMessage.status != "suppressed",
                SmsMessage.created_at >= start,
                SmsMessage.created_at < end,
            )
            .group_by(SmsMessage.phone_hash)
        )
        return {h: int(n) for h, n in (await self.session.execute(query)).all()}

    async def opted_out(self, hashes: Iterable[str]) -> set[str]:
        """Those of `hashes` that opted out (the domain's contact consent)."""
        return await ConsentRepository(self.session).opted_out(hashes)

    async def opt_out(self, phone_hash: str, at: datetime, source_ref: str) -> None:
        """Record an opt-out (TD, 退订, STOP…); a second one keeps the first."""
        await ConsentRepository(self.session).opt_out(phone_hash, at, source_ref)

    async def opt_in(self, phone_hash: str) -> bool:
        return await ConsentRepository(self.session).opt_in(phone_hash)

    # --- messages ------------------------------------------------------------------------------

    async def update_message(self, message_id: int, **values: Any) -> None:
        await self.session.execute(
            update(SmsMessage).where(SmsMessage.id == message_id).values(**values)
        )

    async def message_by_sid(self, provider_sid: str) -> SmsMessage | None:
        result = await self.session.execute(
            select(SmsMessage).where(SmsMessage.provider_sid == provider_sid).with_for_update()
        )
        return result.scalar_one_or_none()

    async def messages_for(self, evaluation_id: int) -> Sequence[SmsMessage]:
        result = await self.session.execute(
            select(SmsMessage)
            .where(SmsMessage.evaluation_id == evaluation_id)
            .order_by(SmsMessage.id)
        )
        return result.scalars().all()

    async def awaiting_reason(
        self, phone_hash: str, since: datetime
    ) -> tuple[Rating, Evaluation] | None:
        """The adopted rating we asked this number a reason for, if it still has none."""
        result = await self.session.execute(
            select(Rating, Evaluation)
            .join(Evaluation, Evaluation.adopted_rating_id == Rating.id)
            .join(SmsMessage, SmsMessage.evaluation_id == Evaluation.id)
            .options(selectinload(Evaluation.case))
            .where(
                SmsMessage.phone_hash == phone_hash,
                SmsMessage.kind == "ask_reason",
                SmsMessage.created_at >= since,
                Rating.reason.is_(None),
            )
            .order_by(SmsMessage.id.desc())
            .limit(1)
        )
        row = result.first()
        if row is None or row[0].tags:
            return None
        return row[0], row[1]

    # --- inbound -------------------------------------------------------------------------------

    async def inbound(self, message_sid: str) -> SmsInbound | None:
        result = await self.session.execute(
            select(SmsInbound).where(SmsInbound.message_sid == message_sid).with_for_update()
        )
        return result.scalar_one_or_none()
