"""Delivery receipts: queued, sent, delivered, undelivered, failed, stored per message.

Receipts arrive out of order and more than once; a message never goes back to an earlier
stage (`STATUS_RANK`), and a failed invitation or reminder is scheduled for its one retry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.policy.profile import Profile
from sms.storage.models import NOTICE_KINDS, STARTED_KINDS, STATUS_RANK
from sms.storage.repository import SmsRepository

FAILED = ("failed", "undelivered")
MAX_ATTEMPTS = 2  # a failed message we started is tried once more
RETRY_DELAY = timedelta(minutes=30)
RETRIED_KINDS = (*STARTED_KINDS, *NOTICE_KINDS)


async def record_receipt(
    sessions: async_sessionmaker[AsyncSession],
    profile: Profile,
    provider_sid: str,
    status: str,
    error_code: str | None,
    now: datetime,
) -> bool:
    """Store a delivery receipt; out-of-order or repeated receipts never move a message back.
    A failed invitation or reminder is scheduled for its one retry. False: unknown sid."""
    async with sessions() as session:
        repo = SmsRepository(session)
        row = await repo.message_by_sid(provider_sid)
        if row is None:
            return False
        if STATUS_RANK.get(status, 0) <= STATUS_RANK.get(row.status, 0):
            return True
        values: dict[str, object] = {"status": status, "status_at": now}
        if status in FAILED:
            values["error"] = f"delivery {status}" + (f" ({error_code})" if error_code else "")
            if row.kind in RETRIED_KINDS and row.attempts < MAX_ATTEMPTS:
                values["next_attempt_at"] = profile.quiet_hours.next_allowed(now + RETRY_DELAY)
        await repo.update_message(row.id, **values)
        await session.commit()
    return True
