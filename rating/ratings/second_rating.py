"""Second rating (追评): after a ticket closes, the citizen may rate again (profile.second_rating).

The ticket workflow records the invitation intent when it closes a confirmed ticket; the SMS
part sends it (`due_invitations`, `mark_sent`) and hands the reply to `rate_second`. The second
rating is kept beside the first (attempt = 2, not the adopted one, so first-rating statistics
do not change) and posted to the central store as 评价次数 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import AuditLog
from rating.cases.models import Rating
from rating.cases.repository import Repository
from rating.errors import Conflict, NotFound
from rating.outbox.central import rating_values
from rating.outbox.models import OutboxItem
from rating.policy.profile import Profile
from rating.policy.rules import check_rating
from rating.privacy import PhoneVault
from rating.ratings.second_invites import SecondRatingRepository


@dataclass(frozen=True)
class Invitation:
    """What the SMS part needs to invite a citizen to rate again."""

    invite_id: int
    evaluation_id: int
    case_no: str
    phone: str | None  # clear, for sending only


class SecondRatings:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], profile: Profile, vault: PhoneVault
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.vault = vault

    async def due_invitations(self, now: datetime, limit: int = 200) -> list[Invitation]:
        """Invitations not yet sent; the sender dedupes on `invite_id` and calls mark_sent."""
        async with self.sessions() as session:
            rows = await SecondRatingRepository(session).due(now, limit)
        return [
            Invitation(
                invite.id,
                invite.evaluation_id,
                case.case_no,
                self.vault.decrypt(case.phone_enc) if case.phone_enc else None,
            )
            for invite, case in rows
        ]

    async def mark_sent(self, invite_id: int, now: datetime) -> None:
        async with self.sessions() as session:
            await SecondRatingRepository(session).mark_sent(invite_id, now)
            await session.commit()

    async def rate_second(
        self,
        case_no: str,
        level: int,
        channel: str,
        *,
        tags: list[str] | None = None,
        reason: str | None = None,
        source_ref: str | None = None,
        actor: str,
        now: datetime,
    ) -> Rating:
        """Store the second rating and its outbox row; one per invitation."""
        checked = check_rating(self.profile, level, channel, tags, reason, require_reason=False)
        async with self.sessions() as session:
            repo = Repository(session)
            evaluation = await repo.evaluation_by_case_no(case_no)
            if evaluation is None:
                raise NotFound(
                    f"no case {case_no!r} is registered",
                    code="case_not_found",
                    params={"case_no": case_no},
                )
            if source_ref and (earlier := await repo.rating_by_source(evaluation.id, source_ref)):
                return earlier
            invite = await SecondRatingRepository(session).open_invite(evaluation.id)
            if invite is None:
                raise Conflict(
                    f"case {case_no} has no open invitation to rate again",
                    code="no_second_rating",
                    params={"case_no": case_no},
                )
            rating = Rating(
                evaluation_id=evaluation.id,
                level=int(checked.level),
                score=self.profile.score(checked.level),
                channel=channel,
                tags=checked.tags,
                reason=checked.reason,
                source_ref=source_ref,
                attempt=2,
                adopted=False,
                rated_at=now,
                created_at=now,
            )
            repo.add(rating)
            await repo.flush()
            invite.rating_id = rating.id
            repo.add(OutboxItem(**rating_values(self.profile, self.vault, evaluation, rating, now)))
            AuditLog(session).record(
                now, actor, "rating.second", "evaluation", case_no, level=rating.level
            )
            await session.commit()
        return rating
