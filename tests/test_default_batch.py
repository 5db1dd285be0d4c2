"""Default ratings in batches (RatingService.rate_defaults), on SQLite and PostgreSQL.

Bad inputs tried here: a batch naming an evaluation a citizen rated after the claim, an id
that does not exist, the same batch twice, an empty batch, and a batch that fails as a whole
(the sweep then rates its rows one by one).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.cases.models import Evaluation, Rating
from rating.errors import InvalidInput
from rating.outbox.models import OutboxItem
from rating.ratings.requests import RatingRequest
from rating.ratings.service import RatingService
from scheduler.sweeps import DefaultRatings
from tests.test_scheduler import register_many, scalar


async def ids(services: Services) -> list[int]:
    async with services.sessions() as session:
        return list(
            (await session.execute(select(Evaluation.id).order_by(Evaluation.id))).scalars()
        )


async def test_batch_rates_pending_ones_and_leaves_a_citizens_rating(services: Services) -> None:
    await register_many(services, 4)
    now = services.clock()
    await services.ratings.rate(RatingRequest("C00001", 3, "sms"), actor="t", now=now)
    assert await services.ratings.rate_defaults([*await ids(services), 999_999], now) == 3
    assert await services.ratings.rate_defaults(await ids(services), now) == 0  # again
    assert await services.ratings.rate_defaults([], now) == 0
    rated = await services.ratings.evaluation("C00001")
    assert rated.status == "rated" and [r.channel for r in rated.ratings] == ["sms"]
    defaulted = await services.ratings.evaluation("C00002")
    [rating] = defaulted.ratings
    assert defaulted.status == "defaulted" and defaulted.adopted_rating_id == rating.id
    assert (rating.channel, rating.adopted, rating.source_ref) == (
        "system",
        True,
        f"default:{defaulted.id}",
    )
    assert rating.level == services.profile.default_rating.level
    # As `rate` does: an outbox row per adopted rating, an audit entry per rating.
    assert await scalar(services, select(func.count()).select_from(OutboxItem)) == 4
    adopted = select(func.count()).where(AuditEntry.action == "rating.adopted")
    assert await scalar(services, adopted) == 4
    assert await scalar(services, select(func.count()).where(Rating.channel == "system")) == 3


async def test_failed_batch_falls_back_to_one_by_one(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_many(services, 3)

    async def broken(self: RatingService, evaluation_ids: list[int], now: object) -> int:
        raise InvalidInput("a bad row", code="bad_row")

    monkeypatch.setattr(RatingService, "rate_defaults", broken)
    sweep = DefaultRatings(services.sessions, services.ratings, owner="me")
    assert await sweep(services.clock()) == 3
    defaulted = select(func.count()).where(Evaluation.status == "defaulted")
    assert await scalar(services, defaulted) == 3
