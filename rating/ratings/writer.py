"""Ratings written in batches: one transaction, one round of statements for many ratings.

`RatingService.rate` queues every rating on a group commit (rating/db/batching.py); this
module writes a batch. The rules are those of one rating at a time, applied in arrival order:

- an unknown case answers NotFound for that request alone;
- a request whose `source_ref` is already stored for the evaluation (a retried AGI call, a
  webhook retry), in the database or earlier in the same batch, replays the first one;
- the first new rating of a pending evaluation is adopted by a compare-and-set in the UPDATE's
  WHERE (`status = 'pending'`), so a rating committed meanwhile by another process wins; the
  others are kept beside it, not applied;
- an adopted rating gets its outbox row and, where its level opens one, its ticket, in the
  same transaction; every rating gets its audit line.

Should the insert hit the unique (evaluation, source_ref) of a rating written meanwhile outside
the batch, the batch is rolled back and each request is written alone, so only the one that
raced replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import audit_values
from rating.access.models import AuditEntry
from rating.cases.models import Evaluation, Rating
from rating.cases.repository import Repository
from rating.db.batching import split_on_conflict
from rating.errors import Conflict, NotFound
from rating.outbox.models import OutboxItem
from rating.policy.profile import Profile
from rating.ratings.adoption import AdoptionRules
from rating.ratings.requests import RatingOutcome, RatingRequest, Submission, new_rating
from rating.tickets.models import Ticket
from rating.tickets.numbering import number_tickets
from rating.tickets.repository import TicketRepository


class RatingStore(Protocol):
    """What a batch of ratings is written with (RatingService has it): the sessions, the
    profile that scores a rating, and the rules that say what an adopted one brings along."""

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def profile(self) -> Profile: ...

    @property
    def adoption(self) -> AdoptionRules: ...


async def write_ratings(
    store: RatingStore, submissions: Sequence[Submission]
) -> list[RatingOutcome | Exception]:
    """Write a batch; one outcome (or the request's own error) per submission, in order."""

    async def replay(one: Submission) -> RatingOutcome | Exception:
        # A concurrent try of the same attempt wrote it first: answer with that one.
        try:
            return await _replay(store, one.request)
        except Conflict as exc:
            return exc

    return await split_on_conflict(submissions, lambda batch: _write(store, batch), replay)


async def _write(
    store: RatingStore, submissions: Sequence[Submission]
) -> list[RatingOutcome | Exception]:
    results: list[RatingOutcome | Exception | None] = [None] * len(submissions)
    async with store.sessions() as session:
        repo = Repository(session)
        evaluations = await repo.evaluation_records(list({s.request.case_no for s in submissions}))
        fresh: dict[int, tuple[Evaluation, Rating]] = {}  # submission index -> new rating
        by_source: dict[tuple[int, str], Rating] = {}  # new ratings of this batch by source_ref
        replays: dict[int, tuple[Evaluation, Rating]] = {}
        candidate: dict[int, int] = {}  # evaluation id -> index of its first new rating
        for i, sub in enumerate(submissions):
            request = sub.request
            evaluation = evaluations.get(request.case_no)
            if evaluation is None:
                results[i] = NotFound(
                    f"no case {request.case_no!r} is registered",
                    code="case_not_found",
                    params={"case_no": request.case_no},
                )
                continue
            ref = request.source_ref
            earlier = _by_source(evaluation, ref) or (
                by_source.get((evaluation.id, ref)) if ref is not None else None
            )
            if earlier is not None:
                replays[i] = (evaluation, earlier)
                continue
            rating = new_rating(store.profile, sub.checked, request, evaluation.id, sub.now)
            fresh[i] = (evaluation, rating)
            if ref is not None:
                by_source[(evaluation.id, ref)] = rating
            if evaluation.status == "pending" and evaluation.id not in candidate:
                # Written as adopted, which it is unless another process's rating commits
                # first (then _adopt turns it back): one UPDATE less in the common case.
                candidate[evaluation.id] = i
                rating.adopted = True
        # Core executemany (rating/db/records.py insert_all), not the unit of work: its
        # cascades and bookkeeping per object were most of a batch's CPU (bench/rate_bench.py).
        await repo.insert_all([rating for _, rating in fresh.values()])
        won = await _adopt(repo, submissions, fresh, candidate)
        tickets: dict[int, Ticket | None] = {}  # rating id -> its ticket, for this batch
        outbox: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        for i, (evaluation, rating) in fresh.items():
            sub = submissions[i]
            adopted = i in won
            ticket = None
            if adopted:
                adoption = store.adoption.after_adoption(evaluation, rating, sub.now)
                outbox.append(adoption.outbox)
                ticket = adoption.ticket
            tickets[rating.id] = ticket
            audits.append(
                audit_values(
                    sub.now,
                    sub.actor,
                    "rating.adopted" if adopted else "rating.not_applied",
                    "evaluation",
                    sub.request.case_no,
                    level=rating.level,
                    channel=rating.channel,
                    rating_id=rating.id,
                )
            )
            results[i] = RatingOutcome(evaluation, rating, adopted, False, ticket)
        await repo.insert_rows(OutboxItem, outbox)
        opened = [t for t in tickets.values() if t is not None]
        # Numbers last: the counter row stays locked until this transaction commits.
        audits += await number_tickets(session, opened, store.profile.tz)
        await repo.insert_all(opened)
        await repo.insert_rows(AuditEntry, audits)
        stored = await TicketRepository(session).tickets_for_ratings(
            [r.id for _, r in replays.values() if r.id not in tickets]
        )
        for i, (evaluation, earlier) in replays.items():
            ticket = tickets[earlier.id] if earlier.id in tickets else stored.get(earlier.id)
            results[i] = RatingOutcome(evaluation, earlier, earlier.adopted, True, ticket)
        await session.commit()
    _set_committed(fresh, won)
    return [r for r in results if r is not None]


async def _adopt(
    repo: Repository,
    submissions: Sequence[Submission],
    fresh: dict[int, tuple[Evaluation, Rating]],
    candidate: dict[int, int],
) -> set[int]:
    """The compare-and-set of each pending evaluation's first new rating (written as adopted);
    the submission indexes that won. One UPDATE per status (a default rating leaves
    `defaulted`, the others `rated`); the ratings that lost are set back to not adopted."""
    by_status: dict[str, list[tuple[int, int]]] = {}
    for evaluation_id, i in candidate.items():
        status = adopted_status(submissions[i].request.channel)
        by_status.setdefault(status, []).append((evaluation_id, fresh[i][1].id))
    won: set[int] = set()
    for status, pairs in by_status.items():
        won |= {candidate[e] for e in await repo.adopt_many(pairs, status)}
    lost = [fresh[i][1] for i in candidate.values() if i not in won]
    if lost:
        await repo.unadopt([rating.id for rating in lost])
        for rating in lost:
            rating.adopted = False
    return won


def _set_committed(fresh: dict[int, tuple[Evaluation, Rating]], won: set[int]) -> None:
    """The committed state, set on the batch's plain records (Repository.evaluation_records)
    instead of read back: a second round of queries would double the cost of a rating."""
    for i, (evaluation, rating) in fresh.items():
        if i in won:
            evaluation.__dict__.update(
                status=adopted_status(rating.channel), adopted_rating_id=rating.id
            )
        evaluation.ratings.append(rating)


def adopted_status(channel: str) -> str:
    """An evaluation's status once a rating of this channel is adopted."""
    return "defaulted" if channel == "system" else "rated"


async def _replay(store: RatingStore, request: RatingRequest) -> RatingOutcome:
    async with store.sessions() as session:
        repo = Repository(session)
        evaluation = await repo.evaluation_by_case_no(request.case_no)
        earlier = _by_source(evaluation, request.source_ref) if evaluation else None
        if evaluation is None or earlier is None:
            raise Conflict(
                "the rating changed while it was written; try again", code="rating_changed"
            )
        ticket = (await TicketRepository(session).tickets_for_ratings([earlier.id])).get(earlier.id)
    return RatingOutcome(evaluation, earlier, earlier.adopted, True, ticket)


def _by_source(evaluation: Evaluation, source_ref: str | None) -> Rating | None:
    """The rating an earlier try of the same attempt (same source_ref) already recorded."""
    if source_ref is None:
        return None
    return next((r for r in evaluation.ratings if r.source_ref == source_ref), None)
