"""A rating as it arrives from any channel, checked and waiting for its batch, and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rating.cases.models import Evaluation, Rating
from rating.db.records import new_record
from rating.policy.profile import Profile
from rating.policy.rules import CheckedRating
from rating.tickets.models import Ticket


@dataclass(frozen=True)
class RatingRequest:
    """A rating from any channel; `source_ref` makes retries of one attempt idempotent."""

    case_no: str
    level: int
    channel: str
    tags: list[str] | None = None
    reason: str | None = None
    voice_ref: str | None = None
    source_ref: str | None = None
    require_reason: bool = True


@dataclass(frozen=True)
class Submission:
    """One checked rating request waiting for its batch."""

    request: RatingRequest
    checked: CheckedRating
    actor: str
    now: datetime


@dataclass(frozen=True)
class RatingOutcome:
    """What happened to a rating: adopted, or recorded beside the one that was."""

    evaluation: Evaluation
    rating: Rating
    adopted: bool
    replayed: bool
    ticket: Ticket | None


def new_rating(
    profile: Profile,
    checked: CheckedRating,
    request: RatingRequest,
    evaluation_id: int,
    now: datetime,
) -> Rating:
    """A rating row, not adopted yet (the compare-and-set decides that)."""
    level = int(checked.level)
    return new_record(
        Rating,
        {
            "evaluation_id": evaluation_id,
            "level": level,
            "score": profile.score(level),
            "channel": request.channel,
            "tags": checked.tags,
            "reason": checked.reason,
            "voice_ref": request.voice_ref,
            "source_ref": request.source_ref,
            "adopted": False,
            "rated_at": now,
            "created_at": now,
        },
    )
