"""The rating domain's use cases: register a completed case, record a rating.

Every channel (IVR, SMS, web, API, the scheduler) goes through `RatingService.rate`, so the rule
"one adopted rating per evaluation" and the birth of a bad rating's ticket hold everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.cases.models import Evaluation
from rating.cases.registration import (
    Registered,
    Registration,
    ServiceRecord,
    register_cases,
    registration,
)
from rating.cases.repository import Repository
from rating.cases.status import CaseStatus, case_statuses
from rating.db.batching import Batcher
from rating.db.engine import batches_in_flight
from rating.errors import NotFound
from rating.policy.profile import Profile
from rating.policy.rules import check_rating
from rating.policy.workdays import WorkCalendar
from rating.privacy import PhoneVault
from rating.ratings.adoption import AdoptionRules
from rating.ratings.defaults import rate_defaults
from rating.ratings.requests import RatingOutcome, RatingRequest, Submission
from rating.ratings.writer import write_ratings

RATING_BATCH = 200  # ratings per transaction at most (bench/rate_bench.py)


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
        self.adoption = AdoptionRules(profile, vault, self.calendar)
        # Every rating goes through one group commit (rating/db/batching.py): under a burst the
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

        Checked here, registered in the next batch (rating/cases/registration.py)."""
        return await self.registrar.submit(registration(record, actor, now))

    async def case_status(self, record: ServiceRecord, *, actor: str, now: datetime) -> CaseStatus:
        """The status of a case's evaluation, registering the case as `register` would when it
        is not known; for callers that need no more (rating/cases/status.py)."""
        return await self.checker.submit(registration(record, actor, now))

    async def evaluation(self, case_no: str) -> Evaluation:
        """The evaluation of a case, with its case and ratings loaded."""
        async with self.sessions() as session:
            found = await Repository(session).evaluation_by_case_no(case_no)
        if found is None:
            raise NotFound(
                f"no case {case_no!r} is registered",
                code="case_not_found",
                params={"case_no": case_no},
            )
        return found

    async def evaluations(self, case_no: str | None, limit: int = 100) -> list[Evaluation]:
        async with self.sessions() as session:
            return list(await Repository(session).evaluations(case_no, limit))

    async def rate(self, request: RatingRequest, *, actor: str, now: datetime) -> RatingOutcome:
        """Record a rating; the first real one is adopted, later ones are kept but not applied.

        Checked here (InvalidInput at once), written in the next batch (rating/ratings/writer.py);
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
        """Default-rate a claimed batch in one transaction (rating/ratings/defaults.py); how
        many were adopted."""
        return await rate_defaults(self, evaluation_ids, now)
