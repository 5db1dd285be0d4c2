"""Default ratings in batches: one transaction for a claimed batch of pending evaluations.

The same rules as `RatingService.rate` with channel `system` (the same rating builder, the same
adoption side effects: outbox row, ticket where the level opens one, audit), but one round of
statements for the batch instead of one transaction per evaluation: the sweep over a backlog
was bound by per-rating round trips (bench/sweep_bench.py). Adoption is still a compare-and-set
per evaluation (`status = 'pending'` in the UPDATE's WHERE), so a citizen's rating committed
meanwhile wins, and the default rating is kept beside it, not applied, as `rate` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm.attributes import set_committed_value

from rating.policy import check_rating
from rating.storage import Repository
from rating.sweep_storage import DefaultRatingRepository

if TYPE_CHECKING:
    from rating.service import RatingService

DEFAULT_STATUS = "defaulted"


def source_ref(evaluation_id: int) -> str:
    """The default rating's idempotency key: one per evaluation, whichever path wrote it."""
    return f"default:{evaluation_id}"


async def rate_defaults(service: RatingService, ids: Sequence[int], now: datetime) -> int:
    """Rate each pending evaluation of `ids` with the profile's default level, in one
    transaction; evaluations no longer pending are left alone. How many were adopted."""
    from rating.service import RatingRequest, new_rating

    profile = service.profile
    level = profile.default_rating.level
    checked = check_rating(profile, level, "system", None, None, require_reason=False)
    async with service.sessions() as session:
        repo = Repository(session)
        evaluations = await DefaultRatingRepository(session).pending(ids)
        if not evaluations:
            return 0
        ratings = {
            e.id: new_rating(
                profile,
                checked,
                RatingRequest(e.case.case_no, level, "system", source_ref=source_ref(e.id)),
                e.id,
                now,
            )
            for e in evaluations
        }
        repo.add(*ratings.values())
        await repo.flush()  # one multi-row INSERT … RETURNING for the ids
        won = await DefaultRatingRepository(session).adopt_many(
            {e: r.id for e, r in ratings.items()}, DEFAULT_STATUS
        )
        for evaluation in evaluations:
            rating = ratings[evaluation.id]
            adopted = evaluation.id in won
            if adopted:
                # Already written by adopt_many: set as committed, or the flush updates it again.
                set_committed_value(rating, "adopted", True)
                await service._after_adoption(repo, evaluation, rating, now)
            repo.audit(
                now,
                "scheduler",
                "rating.adopted" if adopted else "rating.not_applied",
                "evaluation",
                evaluation.case.case_no,
                level=rating.level,
                channel=rating.channel,
                rating_id=rating.id,
            )
        await session.commit()
    return len(won)
