"""The rating domain's use cases: register a completed case, record a rating.

Every channel (IVR, SMS, web, API, the scheduler) goes through `RatingService.rate`, so the rule
"one adopted rating per evaluation" and the birth of a bad rating's ticket hold everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.batch_rating import Submission, write_ratings
from rating.batching import Batcher
from rating.case_check import CaseStatus, case_statuses
from rating.db import batches_in_flight
from rating.deadlines import compute_deadlines
from rating.errors import InvalidInput, NotFound
from rating.models import Evaluation, Rating, Ticket
from rating.outbox import rating_values
from rating.policy import CheckedRating, check_rating, ticket_number
from rating.privacy import PhoneVault, normalize_phone
from rating.profile import Profile
from rating.registration import Registered, Registration, register_cases
from rating.storage import Repository, audit_values, new_record
from rating.workdays import WorkCalendar

KINDS = ("consultation", "complaint")
RATING_BATCH = 200  # ratings per transaction at most (bench/rate_bench.py)


@dataclass(frozen=True)
class ServiceRecord:
    """A completed 12345 case as the case system reports it."""

    case_no: str
    kind: str
    phone: str | None
    completed_at: datetime
    agency: str | None = None
    agent_id: str | None = None
    matter: str | None = None
    source: str = "api"


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
class Adoption:
    """What an adopted rating writes beside it: its outbox row, its ticket and that ticket's
    audit line (values, for the batch's Core inserts; the ticket as the caller sees it)."""

    outbox: dict[str, Any]
    ticket: Ticket | None = None
    ticket_audit: dict[str, Any] | None = None


@dataclass(frozen=True)
class RatingOutcome:
    """What happened to a rating: adopted, or recorded beside the one that was."""

    evaluation: Evaluation
    rating: Rating
    adopted: bool
    replayed: bool
    ticket: Ticket | None


class RatingService:
    """Use cases over one profile; built once by the composition root."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        profile: Profile,
        vault: PhoneVault,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.vault = vault
        self.calendar = calendar or WorkCalendar.from_profile(profile)
        # Every rating goes through one group commit (rating/batching.py): under a burst the
        # ratings that arrive while a batch is written share the next transaction; on
        # PostgreSQL two batches are written at once (rating.db.batches_in_flight).
        in_flight = batches_in_flight(sessions)
        self.writer: Batcher[Submission, RatingOutcome] = Batcher(
            lambda batch: write_ratings(self, batch), max_batch=RATING_BATCH, in_flight=in_flight
        )
        self.registrar: Batcher[Registration, Registered] = Batcher(
            lambda batch: register_cases(self, batch), max_batch=RATING_BATCH
        )
        self.checker: Batcher[Registration, CaseStatus] = Batcher(
            lambda batch: case_statuses(self, batch), max_batch=RATING_BATCH, in_flight=in_flight
        )

    async def register(
        self, record: ServiceRecord, *, actor: str, now: datetime
    ) -> tuple[Evaluation, bool]:
        """Open the evaluation of a completed case; the same case_no again returns the first.

        Checked here, registered in the next batch (rating/registration.py)."""
        return await self.registrar.submit(_registration(record, actor, now))

    async def case_status(self, record: ServiceRecord, *, actor: str, now: datetime) -> CaseStatus:
        """The status of a case's evaluation, registering the case as `register` would when it
        is not known; for callers that need no more (rating/case_check.py)."""
        return await self.checker.submit(_registration(record, actor, now))

    async def evaluation(self, case_no: str) -> Evaluation:
        """The evaluation of a case, with its case and ratings loaded."""
        async with self.sessions() as session:
            found = await Repository(session).evaluation_by_case_no(case_no)
        if found is None:
            raise NotFound(f"no case {case_no!r} is registered", code="case_not_found")
        return found

    async def evaluations(self, case_no: str | None, limit: int = 100) -> list[Evaluation]:
        async with self.sessions() as session:
            return list(await Repository(session).evaluations(case_no, limit))

    async def rate(self, request: RatingRequest, *, actor: str, now: datetime) -> RatingOutcome:
        """Record a rating; the first real one is adopted, later ones are kept but not applied.

        Checked here (InvalidInput at once), written in the next batch (rating/batch_rating.py);
        returns once that batch is committed."""
        checked = check_rating(
            self.profile,
            request.level,
            request.channel,
            request.tags,
            request.reason,
            require_reason=request.require_reason,
        )
        return await self.writer.submit(Submission(request, checked, actor, now))

    async def rate_defaults(self, evaluation_ids: Sequence[int], now: datetime) -> int:
        """Default-rate a claimed batch in one transaction (rating/defaults.py); how many were
        adopted."""
        from rating.defaults import rate_defaults  # it builds on this module

        return await rate_defaults(self, evaluation_ids, now)

    def after_adoption(self, evaluation: Evaluation, rating: Rating, now: datetime) -> Adoption:
        """The rows an adopted rating brings into its transaction: the outbox row for the
        central store and, when the level opens one, the ticket with its audit line."""
        profile = self.profile
        outbox = rating_values(profile, self.vault, evaluation, rating, now)
        level = rating.level
        if not profile.opens_ticket(level):
            return Adoption(outbox)
        case = evaluation.case
        rating_id = rating.id
        deadlines = compute_deadlines(profile, now, self.calendar)
        # Numbered after its rating (one ticket per rating), so no flush is needed for an id.
        ticket_no = ticket_number(now.astimezone(profile.tz), rating_id)
        ticket = new_record(
            Ticket,
            {
                "case_id": case.id,
                "evaluation_id": evaluation.id,
                "rating_id": rating_id,
                "status": "new",
                "level": level,
                "tags": list(rating.tags),
                "reason": rating.reason,
                "voice_ref": rating.voice_ref,
                "agency": case.agency,
                "phone_masked": case.phone_masked,
                "deadlines": {name: when.isoformat() for name, when in deadlines.items()},
                "created_at": now,
                # The first rule is the one in force while the ticket is new
                # (rating/tickets.py); the alert and transfer sweeps pick it up from `now`.
                "due_at": next(iter(deadlines.values()), None),
                "next_alert_at": now,
                "transfer_next_at": now,
                "updated_at": now,
                "ticket_no": ticket_no,
            },
        )
        audit = audit_values(now, "system", "ticket.created", "ticket", ticket_no, level=level)
        return Adoption(outbox, ticket, audit)


def _registration(record: ServiceRecord, actor: str, now: datetime) -> Registration:
    """A case report checked (InvalidInput at once), its phone normalized, for a batch."""
    if record.kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", code="invalid_kind")
    if record.completed_at.tzinfo is None:
        raise InvalidInput("completed_at must carry a UTC offset", code="naive_timestamp")
    phone = normalize_phone(record.phone) if record.phone else None
    return Registration(record, phone, actor, now)


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
