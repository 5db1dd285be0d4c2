"""Rating links: what a token opens, and what submitting its form does.

A link rates its evaluation once; it expires with the evaluation (the default-rating time).
When an SMS rating that needs a reason came without one, the same link lets the citizen add
the reason (the ask-reason reply carries it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.cases.models import Evaluation, Rating
from rating.errors import InvalidInput
from rating.links.repository import LinkRepository
from rating.policy.profile import Profile
from rating.policy.rules import check_rating
from rating.ratings.late_reason import add_late_reason
from rating.ratings.requests import RatingOutcome, RatingRequest
from rating.ratings.service import RatingService

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{8,32}")


class LinkState(Enum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    DONE = "done"  # used, or the evaluation was rated elsewhere
    OPEN = "open"  # rate it
    ADD_REASON = "add_reason"  # rated by SMS without the reason the profile requires


@dataclass(frozen=True)
class LinkView:
    state: LinkState
    evaluation: Evaluation | None = None
    rating: Rating | None = None  # the adopted rating, when there is one


class Links:
    """Looks up tokens and records what their form sends."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        profile: Profile,
        ratings: RatingService,
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.ratings = ratings

    async def view(self, token: str, now: datetime) -> LinkView:
        """What the token opens now."""
        if not TOKEN_SHAPE.fullmatch(token):
            return LinkView(LinkState.UNKNOWN)
        async with self.sessions() as session:
            found = await LinkRepository(session).opened(token)
        if found is None:
            return LinkView(LinkState.UNKNOWN)
        link, evaluation = found
        adopted = next((r for r in evaluation.ratings if r.adopted), None)
        if link.used_at is not None:
            return LinkView(LinkState.DONE, evaluation, adopted)
        if evaluation.status == "pending":
            if now >= link.expires_at:
                return LinkView(LinkState.EXPIRED, evaluation)
            return LinkView(LinkState.OPEN, evaluation)
        if (
            adopted is not None
            and adopted.channel == "sms"
            and adopted.reason is None
            and not adopted.tags
            and self.profile.reason_required(adopted.level)
        ):
            return LinkView(LinkState.ADD_REASON, evaluation, adopted)
        if evaluation.status == "defaulted":
            return LinkView(LinkState.EXPIRED, evaluation, adopted)
        return LinkView(LinkState.DONE, evaluation, adopted)

    async def rate(
        self,
        token: str,
        evaluation: Evaluation,
        level: int,
        tags: list[str],
        reason: str | None,
        now: datetime,
    ) -> RatingOutcome:
        """Rate through the domain (InvalidInput on a bad or missing reason); then use the link."""
        outcome = await self.ratings.rate(
            RatingRequest(
                case_no=evaluation.case.case_no,
                level=level,
                channel="web",
                tags=tags,
                reason=reason,
                source_ref=f"web:{token}",
                require_reason=True,
            ),
            actor="web",
            now=now,
        )
        await self._use(token, now)
        return outcome

    async def add_reason(
        self,
        token: str,
        evaluation: Evaluation,
        rating: Rating,
        tags: list[str],
        reason: str | None,
        now: datetime,
    ) -> None:
        """Add the tags and reason an SMS rating lacked, onto the rating and its ticket."""
        checked = check_rating(self.profile, rating.level, "web", tags, reason, require_reason=True)
        async with self.sessions() as session:
            added = await add_late_reason(
                session,
                self.profile,
                self.ratings.vault,
                rating.id,
                checked.reason,
                checked.tags,
                actor="web",
                now=now,
            )
            if not added:
                raise InvalidInput("this rating already has its reason", code="already_rated")
            await LinkRepository(session).use(token, now)
            await session.commit()

    async def _use(self, token: str, now: datetime) -> None:
        async with self.sessions() as session:
            await LinkRepository(session).use(token, now)
            await session.commit()
