"""Queries behind SmsService.send (sms/notices.py): held and failed notices, second ratings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select

from rating.db.records import SessionRepository
from sms.storage.models import NOTICE_KINDS, SmsMessage

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
