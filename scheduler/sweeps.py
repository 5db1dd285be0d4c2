"""Sweeps that live with the scheduler: default ratings. Others come in as callables."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.errors import DomainError
from rating.ratings.requests import RatingRequest
from rating.ratings.service import RatingService
from rating.sweeps.claims import DEFAULT_SWEEP, ClaimRepository

log = structlog.get_logger("pingjia.scheduler")


@dataclass
class DefaultRatings:
    """Evaluations left unrated past the profile's delay get the profile's level, once.

    Each batch is leased in `sweep_claims` before rating, then rated in one transaction
    (`RatingService.rate_defaults`); the claim's row locks end with the claim's commit. The
    lease keeps other processes off the rows; the compare-and-set per evaluation and the
    `source_ref` keep a crashed process's retry from rating twice.
    """

    sessions: async_sessionmaker[AsyncSession]
    ratings: RatingService
    owner: str
    batch: int = 200
    lease: timedelta = timedelta(minutes=5)
    max_batches: int = 50  # per run; the next trigger continues
    concurrency: int = 8  # ratings in flight when a failed batch is rated row by row

    async def __call__(self, now: datetime) -> int:
        done = 0
        level = self.ratings.profile.default_rating.level
        for _ in range(self.max_batches):
            async with self.sessions() as session:
                claimed = await ClaimRepository(session).claim_due_defaults(
                    now, self.owner, now + self.lease, self.batch
                )
                await session.commit()
            if not claimed:
                break
            done += await self._batch(claimed, level, now)
            async with self.sessions() as session:
                await ClaimRepository(session).release(DEFAULT_SWEEP, [i for i, _ in claimed])
                await session.commit()
        return done

    async def _batch(self, claimed: list[tuple[int, str]], level: int, now: datetime) -> int:
        """The batch in one transaction; should it fail (a bad row, a race on a rating's
        source_ref), each row through `rate` on its own, so one row cannot stop the rest."""
        try:
            return await self.ratings.rate_defaults([i for i, _ in claimed], now)
        except (DomainError, SQLAlchemyError) as exc:
            log.warning("default rating batch failed; rating one by one", error=str(exc))
        gate = asyncio.Semaphore(self.concurrency)
        results = await asyncio.gather(*(self._default(gate, i, c, level, now) for i, c in claimed))
        return sum(results)

    async def _default(
        self, gate: asyncio.Semaphore, evaluation_id: int, case_no: str, level: int, now: datetime
    ) -> int:
        async with gate:
            try:
                outcome = await self.ratings.rate(
                    RatingRequest(
                        case_no,
                        level=level,
                        channel="system",
                        source_ref=f"default:{evaluation_id}",
                        require_reason=False,
                    ),
                    actor="scheduler",
                    now=now,
                )
            except DomainError as exc:  # one bad row must not stop the batch
                log.warning("default rating failed", case_no=case_no, error=exc.message)
                return 0
        return int(outcome.adopted and not outcome.replayed)
