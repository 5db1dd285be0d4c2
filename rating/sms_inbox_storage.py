"""Queries of the SMS inbox: replies stored by the webhook, claimed for handling.

A reply is inserted once per MessageSid (providers retry their callbacks) and claimed by the
process that stored it; a claim older than the stale limit whose reply is still unhandled died
with its process, and the sweep takes it over (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
sweeping processes never take the same reply).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from rating.sms_models import SmsInbound
from rating.storage import SessionRepository


class InboxRepository(SessionRepository):
    async def accept(self, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert the replies not stored before, in one statement; their ids by MessageSid."""
        if not rows:
            return {}
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(SmsInbound)
            .on_conflict_do_nothing(index_elements=[SmsInbound.message_sid])
            .returning(SmsInbound.id, SmsInbound.message_sid)
        )
        # executemany: compiled once and cached ("insertmanyvalues" still sends one INSERT per
        # 1,000 rows); a VALUES list built per batch was compiled anew for every batch size.
        result = await self.session.execute(statement, list(rows))
        return {str(sid): int(row_id) for row_id, sid in result.all()}

    async def claim_stale(
        self, now: datetime, claimed_before: datetime, limit: int
    ) -> Sequence[SmsInbound]:
        """Unhandled replies claimed before `claimed_before` (their handler died), claimed
        again now, oldest first. Rows stored before the inbox kept the sender are left."""
        result = await self.session.execute(
            select(SmsInbound)
            .where(
                SmsInbound.handled_at.is_(None),
                SmsInbound.claimed_at <= claimed_before,
                SmsInbound.phone_enc.is_not(None),
            )
            .order_by(SmsInbound.claimed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = result.scalars().all()
        if rows:
            await self.session.execute(
                update(SmsInbound)
                .where(SmsInbound.id.in_([r.id for r in rows]))
                .values(claimed_at=now)
                .execution_options(synchronize_session=False)
            )
        return rows
