"""Queries behind SmsService.send (sms/notices.py): held and failed notices, second ratings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from rating.models import Evaluation
from rating.sms_models import NOTICE_KINDS, SmsMessage
from rating.storage import SessionRepository
from rating.ticket_models import SecondRatingInvite

FAILED = ("failed", "undelivered")


class NoticeRepository(SessionRepository):
    """Named queries over one session; the caller owns the transaction."""

    async def claim_due(self, now: datetime, max_attempts: int, limit: int) -> Sequence[SmsMessage]:
        """Notices held (quiet hours, daily cap) whose time has come, and failed ones due for
        their retry; locked, so other processes skip them (SKIP LOCKED on PostgreSQL)."""
        query = (
            select(SmsMessage)
            .where(
                SmsMessage.next_attempt_at <= now,
                or_(
                    SmsMessage.status == "held",
                    and_(
                        SmsMessage.status.in_(FAILED),
                        SmsMessage.kind.in_(NOTICE_KINDS),
                        SmsMessage.attempts < max_attempts,
                    ),
                ),
            )
            .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def open_second_invitation(
        self, phone_hash: str, since: datetime, evaluation_id: int | None
    ) -> tuple[SmsMessage, Evaluation] | None:
        """The newest second-rating invitation sent to this number since `since` whose
        invitation is still unanswered (optionally: for this evaluation only)."""
        query = (
            select(SmsMessage, Evaluation)
            .join(Evaluation, Evaluation.id == SmsMessage.evaluation_id)
            .join(SecondRatingInvite, SecondRatingInvite.evaluation_id == Evaluation.id)
            .options(selectinload(Evaluation.case))
            .where(
                SmsMessage.phone_hash == phone_hash,
                SmsMessage.kind == "second_invite",
                SmsMessage.status.not_in(("suppressed", "held")),
                SmsMessage.created_at >= since,
                SecondRatingInvite.rating_id.is_(None),
            )
            .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
            .limit(1)
        )
        if evaluation_id is not None:
            query = query.where(Evaluation.id == evaluation_id)
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row else None

    async def last_invited_at(self, evaluation_id: int, phone_hash: str) -> datetime | None:
        """When the newest first-rating invitation or reminder went to this number."""
        result = await self.session.execute(
            select(SmsMessage.created_at)
            .where(
                SmsMessage.evaluation_id == evaluation_id,
                SmsMessage.phone_hash == phone_hash,
                SmsMessage.kind.in_(("invitation", "reminder")),
            )
            .order_by(SmsMessage.created_at.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()
