"""The outbox as a queue: claimed head-of-line per ordering key, acknowledged, retried or buried.

Claims are safe with several processes on PostgreSQL: candidates are read `FOR UPDATE SKIP
LOCKED` and leased in the same transaction; SQLite ignores the locking clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from rating.db.records import SessionRepository
from rating.outbox.models import OutboxItem


class OutboxRepository(SessionRepository):
    """The outbox as a queue: head-of-line per ordering key, leased, acknowledged or dead."""

    async def claim(
        self, topics: Sequence[str], now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[OutboxItem]:
        """Due items whose key has no earlier item still waiting; leased until `lease_until`."""
        earlier = aliased(OutboxItem)
        blocked = exists().where(
            earlier.ordering_key == OutboxItem.ordering_key,
            earlier.id < OutboxItem.id,
            earlier.sent_at.is_(None),
            earlier.dead_at.is_(None),
        )
        result = await self.session.execute(
            select(OutboxItem)
            .where(
                OutboxItem.sent_at.is_(None),
                OutboxItem.dead_at.is_(None),
                OutboxItem.next_attempt_at <= now,
                OutboxItem.topic.in_(topics),
                ~blocked,
            )
            .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxItem)
        )
        items = result.scalars().all()
        if items:
            await self.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_([i.id for i in items]))
                .values(next_attempt_at=lease_until)
                .execution_options(synchronize_session=False)
            )
        return items

    async def acknowledge(self, item_ids: Sequence[int], now: datetime) -> None:
        """Mark items sent, in one statement (the common case of a batch)."""
        if item_ids:
            await self.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(item_ids))
                .values(attempts=OutboxItem.attempts + 1, sent_at=now, last_error=None)
                .execution_options(synchronize_session=False)
            )

    async def retry_later(self, item_id: int, attempts: int, at: datetime, error: str) -> None:
        await self._set(item_id, attempts=attempts, next_attempt_at=at, last_error=error[:2000])

    async def bury(self, item_id: int, attempts: int, now: datetime, error: str) -> None:
        await self._set(item_id, attempts=attempts, dead_at=now, last_error=error[:2000])

    async def _set(self, item_id: int, **values: object) -> None:
        await self.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
