"""The queries of second-rating invitations (追评): due ones, the open one, sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from rating.cases.models import Case
from rating.db.records import SessionRepository
from rating.tickets.models import SecondRatingInvite, Ticket


class SecondRatingRepository(SessionRepository):
    """Invitations to rate again (追评) after a ticket closed."""

    async def due(self, now: datetime, limit: int) -> Sequence[tuple[SecondRatingInvite, Case]]:
        result = await self.session.execute(
            select(SecondRatingInvite, Case)
            .join(Ticket, Ticket.id == SecondRatingInvite.ticket_id)
            .join(Case, Case.id == Ticket.case_id)
            .where(SecondRatingInvite.sent_at.is_(None), SecondRatingInvite.due_at <= now)
            .order_by(SecondRatingInvite.due_at)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def open_invite(self, evaluation_id: int) -> SecondRatingInvite | None:
        """The newest invitation of this evaluation not yet answered."""
        result = await self.session.execute(
            select(SecondRatingInvite)
            .where(
                SecondRatingInvite.evaluation_id == evaluation_id,
                SecondRatingInvite.rating_id.is_(None),
            )
            .order_by(SecondRatingInvite.id.desc())
            .limit(1)
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def mark_sent(self, invite_id: int, now: datetime) -> None:
        await self.session.execute(
            update(SecondRatingInvite)
            .where(SecondRatingInvite.id == invite_id, SecondRatingInvite.sent_at.is_(None))
            .values(sent_at=now)
        )
