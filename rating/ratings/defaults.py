"""Default ratings in batches: one transaction for a claimed batch of pending evaluations.

The same write as every other rating (rating/ratings/writer.py: the same rating builder, the same
adoption side effects: outbox row, ticket where the level opens one, audit), one round of
statements for the batch. Evaluations no longer pending when the batch is read are left alone;
adoption is still a compare-and-set per evaluation (`status = 'pending'` in the UPDATE's WHERE),
so a citizen's rating committed meanwhile wins, and the default rating is kept beside it, not
applied, as for any rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rating.policy.rules import check_rating
from rating.ratings.requests import RatingRequest, Submission
from rating.ratings.writer import RatingStore, write_ratings
from rating.sweeps.claims import DefaultRatingRepository


def source_ref(evaluation_id: int) -> str:
    """The default rating's idempotency key: one per evaluation, whichever path wrote it."""
    return f"default:{evaluation_id}"


async def rate_defaults(store: RatingStore, ids: Sequence[int], now: datetime) -> int:
    """Rate each pending evaluation of `ids` with the profile's default level, in one
    transaction; evaluations no longer pending are left alone. How many were adopted."""
    profile = store.profile
    level = profile.default_rating.level
    checked = check_rating(profile, level, "system", None, None, require_reason=False)
    async with store.sessions() as session:
        pending = await DefaultRatingRepository(session).pending(ids)
    submissions = [
        Submission(
            RatingRequest(e.case.case_no, level, "system", source_ref=source_ref(e.id)),
            checked,
            "scheduler",
            now,
        )
        for e in pending
    ]
    if not submissions:
        return 0
    adopted = 0
    for outcome in await write_ratings(store, submissions):
        if isinstance(outcome, Exception):
            raise outcome
        adopted += outcome.adopted and not outcome.replayed
    return adopted
