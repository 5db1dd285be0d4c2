"""A reason given after the rating (SMS "ask for a reason", the link's add-reason mode).

The rating's outbox row left with the rating, without the reason; so the reason travels in a
follow-up row, `central.rating.update`, written in the same transaction as the change to the
rating and its ticket. It shares the rating's ordering key (the store hears the rating first)
and has its own idempotency key, `rating-<id>-reason`: a reason is added once per rating.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from rating.access.audit import AuditLog
from rating.cases.models import Evaluation, Rating
from rating.cases.repository import Repository
from rating.outbox.central import rating_values
from rating.outbox.models import OutboxItem
from rating.policy.profile import Profile
from rating.privacy import PhoneVault
from rating.tickets.repository import TicketRepository


async def add_late_reason(
    session: AsyncSession,
    profile: Profile,
    vault: PhoneVault,
    rating_id: int,
    reason: str | None,
    tags: list[str],
    *,
    actor: str,
    now: datetime,
    **audit: Any,
) -> bool:
    """Add the reason (and tags) to a rating that has none, its ticket, and the central store's
    copy, in the caller's transaction. False when the rating already had a reason."""
    if not await Repository(session).add_reason(rating_id, reason, tags):
        return False
    await TicketRepository(session).add_reason(rating_id, reason, tags)
    rating = await session.get(Rating, rating_id, populate_existing=True)
    assert rating is not None
    evaluation = await session.get(
        Evaluation,
        rating.evaluation_id,
        options=[selectinload(Evaluation.case)],
    )
    assert evaluation is not None
    repo = Repository(session)
    repo.add(OutboxItem(**rating_values(profile, vault, evaluation, rating, now, update=True)))
    AuditLog(session).record(
        now,
        actor,
        "rating.reason_added",
        "evaluation",
        evaluation.case.case_no,
        rating_id=rating.id,
        tags=list(rating.tags),
        **audit,
    )
    return True
