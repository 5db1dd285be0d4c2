"""Ratings through the group commit: many in one transaction, each with one rating's rules.

Bad inputs tried: an unknown case among good ones, two ratings of one evaluation in one batch,
the same source_ref twice in one batch and again in a later one, a rating that races the batch
from outside it (a stale read), a writer that fails, a writer answering the wrong number of
results, a cancelled caller, a batch size of 0, an in_flight of 0, two batches in flight rating
the same evaluations, a batch the database rolled back as a deadlock (and a lone item deadlocked
twice), a database error that is no deadlock, an adoption pair for an evaluation rated already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm.attributes import set_committed_value

from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.cases.models import Evaluation, Rating
from rating.cases.registration import ServiceRecord
from rating.cases.repository import Repository
from rating.db.batching import Batcher
from rating.errors import NotFound
from rating.outbox.models import OutboxItem
from rating.policy.rules import check_rating
from rating.ratings.requests import RatingRequest, Submission, new_rating
from rating.ratings.writer import write_ratings
from rating.tickets.models import Ticket
from tests.conftest import START
from tests.sql_count import counting


async def _register(services: Services, *case_nos: str) -> None:
    for case_no in case_nos:
        record = ServiceRecord(case_no, "complaint", "13812345678", START)
        await services.ratings.register(record, actor="test", now=START)


async def _count(services: Services, model: type) -> int:
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def _bad(case_no: str, ref: str | None = None, level: int = 5) -> RatingRequest:
    return RatingRequest(case_no, level, "ivr", source_ref=ref, require_reason=False)


async def test_a_burst_shares_transactions_and_each_keeps_its_rules(services: Services) -> None:
    cases = [f"G{i}" for i in range(40)]
    await _register(services, *cases)
    with counting(services.engine) as sql:
        outcomes = await asyncio.gather(
            *(services.ratings.rate(_bad(c, f"agi:{c}"), actor="ivr", now=START) for c in cases)
        )
    assert 1 <= sql.transactions < len(cases) // 2, sql  # a burst shares transactions
    assert all(o.adopted and not o.replayed and o.ticket for o in outcomes)
    assert [o.evaluation.case.case_no for o in outcomes] == cases
    assert len({o.ticket.ticket_no for o in outcomes if o.ticket}) == len(cases)
    assert await _count(services, Rating) == len(cases)
    assert await _count(services, Ticket) == len(cases)
    assert await _count(services, OutboxItem) == len(cases)
    for case_no in ("G0", "G39"):
        stored = await services.ratings.evaluation(case_no)
        assert stored.status == "rated" and stored.adopted_rating_id == stored.ratings[0].id
        assert stored.ratings[0].adopted


async def test_one_batch_two_ratings_of_one_evaluation_first_wins(services: Services) -> None:
    await _register(services, "D1", "D2")
    first, second, unknown, other = await asyncio.gather(
        services.ratings.rate(_bad("D1", "sms:a", 5), actor="sms", now=START),
        services.ratings.rate(RatingRequest("D1", 1, "web"), actor="web", now=START),
        services.ratings.rate(_bad("NOPE", "sms:c"), actor="sms", now=START),
        services.ratings.rate(RatingRequest("D2", 2, "api"), actor="api", now=START),
        return_exceptions=True,
    )
    assert isinstance(unknown, NotFound) and unknown.code == "case_not_found"
    assert not isinstance(first, BaseException) and not isinstance(second, BaseException)
    assert not isinstance(other, BaseException)
    assert first.adopted and first.ticket is not None
    assert not second.adopted and second.ticket is None and not second.replayed
    assert other.adopted and other.ticket is None  # 满意 opens no ticket
    assert second.evaluation.status == "rated"
    assert [r.adopted for r in second.evaluation.ratings] == [True, False]
    stored = await services.ratings.evaluation("D1")
    assert stored.adopted_rating_id == first.rating.id
    async with services.sessions() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert sorted(a for a in actions if a.startswith("rating.")) == [
        "rating.adopted",
        "rating.adopted",
        "rating.not_applied",
    ]


async def test_same_source_twice_in_a_batch_and_later_replays(services: Services) -> None:
    await _register(services, "R1")
    outcomes = await asyncio.gather(
        *(services.ratings.rate(_bad("R1", "agi:1.1"), actor="ivr", now=START) for _ in range(3))
    )
    assert [o.replayed for o in outcomes] == [False, True, True]
    assert len({o.rating.id for o in outcomes}) == 1
    assert {o.ticket.ticket_no for o in outcomes if o.ticket} == {outcomes[0].ticket.ticket_no}  # type: ignore[union-attr]
    later = await services.ratings.rate(_bad("R1", "agi:1.1"), actor="ivr", now=START)
    assert later.replayed and later.adopted and later.rating.id == outcomes[0].rating.id
    assert later.ticket is not None and later.ticket.ticket_no == outcomes[0].ticket.ticket_no  # type: ignore[union-attr]
    assert await _count(services, Rating) == 1


async def test_a_rating_racing_the_batch_replays_and_the_rest_is_written(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _register(services, "X1", "X2")
    stored = await services.ratings.rate(_bad("X1", "agi:race"), actor="ivr", now=START)
    real = Repository.evaluation_records
    stale = {"reads": 0}

    async def stale_once(self: Repository, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        found = await real(self, case_nos)
        if stale["reads"] == 0 and len(case_nos) > 1:  # the batch's read misses X1's rating
            for evaluation in found.values():
                set_committed_value(evaluation, "ratings", [])
        stale["reads"] += 1
        return found

    monkeypatch.setattr(Repository, "evaluation_records", stale_once)
    race, fresh = await write_ratings(  # one batch of both, as a burst would make
        services.ratings,
        [
            _submission(services, _bad("X1", "agi:race")),
            _submission(services, RatingRequest("X2", 3, "api")),
        ],
    )
    assert not isinstance(race, Exception) and not isinstance(fresh, Exception)
    assert race.replayed and race.rating.id == stored.rating.id
    assert fresh.adopted and fresh.evaluation.case.case_no == "X2"
    assert await _count(services, Rating) == 2


def _submission(services: Services, request: RatingRequest) -> Submission:
    checked = check_rating(
        services.ratings.profile,
        request.level,
        request.channel,
        request.tags,
        request.reason,
        require_reason=request.require_reason,
    )
    return Submission(request, checked, "test", START)


async def test_batcher_answers_each_caller_and_survives_failures() -> None:
    seen: list[list[int]] = []
    fail = {"now": False}

    async def write(batch: Sequence[int]) -> list[int | Exception]:
        seen.append(list(batch))
        await asyncio.sleep(0)
        if fail["now"]:
            raise ConnectionError("database down")
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in batch]

    batcher: Batcher[int, int] = Batcher(write, max_batch=3)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(8)), return_exceptions=True)
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7",
    ]  # fmt: skip
    assert seen == [[0, 1, 2], [3, 4, 5], [6, 7]] and all(len(b) <= 3 for b in seen)
    fail["now"] = True
    failed = await asyncio.gather(batcher.submit(2), batcher.submit(4), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed)
    fail["now"] = False
    assert await batcher.submit(6) == 60  # the next batch is written again


async def test_batcher_writes_for_a_cancelled_caller_and_checks_its_writer() -> None:
    written: list[int] = []
    gate = asyncio.Event()

    async def write(batch: Sequence[int]) -> list[int | Exception]:
        await gate.wait()
        written.extend(batch)
        return list(batch)

    batcher: Batcher[int, int] = Batcher(write)
    caller = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    caller.cancel()
    gate.set()
    assert await batcher.submit(2) == 2
    assert written == [1, 2]  # the hung-up caller's item was still written

    async def short(batch: Sequence[int]) -> list[int | Exception]:
        return []

    with pytest.raises(RuntimeError, match="answered 0 results"):
        await Batcher(short).submit(1)
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(short, max_batch=0)


async def test_registrations_at_once_share_a_transaction_and_dedupe(services: Services) -> None:
    records = [ServiceRecord(c, "complaint", None, START) for c in ("N1", "N2", "N1", "N3", "N1")]
    with counting(services.engine) as sql:
        found = await asyncio.gather(
            *(services.ratings.register(r, actor="test", now=START) for r in records)
        )
    assert [created for _, created in found] == [True, True, False, True, False]
    assert found[0][0].id == found[2][0].id == found[4][0].id
    assert sql.transactions == 1, sql
    assert await _count(services, Evaluation) == 3
    again, created = await services.ratings.register(records[1], actor="test", now=START)
    assert not created and again.id == found[1][0].id and again.case.case_no == "N2"


async def test_a_registration_racing_the_batch_answers_the_winner(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _register(services, "W1")  # registered "meanwhile" by another process
    real = Repository.evaluations_by_case_nos
    reads = {"n": 0}

    async def stale_once(self: Repository, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        reads["n"] += 1
        return {} if reads["n"] == 1 else await real(self, case_nos)

    monkeypatch.setattr(Repository, "evaluations_by_case_nos", stale_once)
    found = await asyncio.gather(
        services.ratings.register(
            ServiceRecord("W1", "complaint", None, START), actor="t", now=START
        ),
        services.ratings.register(
            ServiceRecord("W2", "complaint", None, START), actor="t", now=START
        ),
    )
    assert [created for _, created in found] == [False, True]
    assert await _count(services, Evaluation) == 2


async def test_a_rating_that_loses_the_compare_and_set_is_stored_not_adopted(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _register(services, "L1")
    first = await services.ratings.rate(RatingRequest("L1", 1, "api"), actor="api", now=START)
    real = Repository.evaluation_records

    async def pending_as_read(self: Repository, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        found = await real(self, case_nos)
        for evaluation in found.values():  # read before the other process's rating committed
            set_committed_value(evaluation, "status", "pending")
        return found

    monkeypatch.setattr(Repository, "evaluation_records", pending_as_read)
    late = await services.ratings.rate(_bad("L1", "agi:late"), actor="ivr", now=START)
    monkeypatch.undo()
    assert not late.adopted and late.ticket is None and not late.rating.adopted
    stored = await services.ratings.evaluation("L1")
    assert stored.adopted_rating_id == first.rating.id
    assert [(r.level, r.adopted) for r in stored.ratings] == [(1, True), (5, False)]
    assert await _count(services, Ticket) == 0


async def test_batcher_lingers_for_company() -> None:
    seen: list[list[int]] = []

    async def write(batch: Sequence[int]) -> list[int | Exception]:
        seen.append(list(batch))
        return list(batch)

    lingering: Batcher[int, int] = Batcher(write, linger_s=0.01)
    first = asyncio.create_task(lingering.submit(1))
    await asyncio.sleep(0.002)  # arrives while the first waits for company
    assert await asyncio.gather(first, lingering.submit(2)) == [1, 2]
    assert seen == [[1, 2]]
    plain: Batcher[int, int] = Batcher(write)
    first = asyncio.create_task(plain.submit(3))
    await asyncio.sleep(0.002)  # no linger: the first went alone
    assert await asyncio.gather(first, plain.submit(4)) == [3, 4]
    assert seen[1:] == [[3], [4]]


async def test_batcher_keeps_up_to_in_flight_batches_at_once() -> None:
    gates = [asyncio.Event(), asyncio.Event()]
    seen: list[list[int]] = []
    running = {"now": 0, "most": 0}

    async def write(batch: Sequence[int]) -> list[int | Exception]:
        seen.append(list(batch))
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await gates[min(len(seen), 2) - 1].wait()
        running["now"] -= 1
        return [n * 10 for n in batch]

    batcher: Batcher[int, int] = Batcher(write, in_flight=2)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    second = [asyncio.create_task(batcher.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.submit(n)) for n in (4, 5)]
    await asyncio.sleep(0)
    assert seen == [[1], [2, 3]] and running["now"] == 2  # two batches in flight, not three
    gates[0].set()
    assert await first == 10
    gates[1].set()
    assert await asyncio.gather(*second, *later) == [20, 30, 40, 50]
    assert sorted(map(sorted, seen)) == [[1], [2, 3], [4, 5]] and running["most"] == 2
    # A batcher whose writers have all finished starts a new one for the next request.
    assert await batcher.submit(6) == 60
    with pytest.raises(ValueError, match="in_flight"):
        Batcher(write, in_flight=0)


class _Deadlock(Exception):
    sqlstate = "40P01"


async def test_a_batch_rolled_back_as_a_deadlock_is_written_one_by_one() -> None:
    from sqlalchemy.exc import DBAPIError

    from rating.db.batching import split_on_conflict

    tries: list[list[int]] = []

    def failing(when: Callable[[Sequence[int]], bool], orig: Exception) -> Any:
        async def write(batch: Sequence[int]) -> list[int | Exception]:
            tries.append(list(batch))
            if when(batch):
                raise DBAPIError("UPDATE evaluations ...", {}, orig)
            return [n * 10 for n in batch]

        return write

    async def settle(n: int) -> int:
        raise AssertionError("only a unique key conflict settles")

    # Deadlocked as a batch: each item alone, in order.
    write = failing(lambda b: len(b) > 1, _Deadlock("deadlock detected"))
    assert await split_on_conflict([1, 2, 3], write, settle) == [10, 20, 30]
    assert tries == [[1, 2, 3], [1], [2], [3]]
    # A lone item deadlocked once is tried once more; twice, its caller hears it.
    tries.clear()
    once = failing(lambda b: len(tries) == 1, _Deadlock("deadlock detected"))
    assert await split_on_conflict([7], once, settle) == [70] and tries == [[7], [7]]
    always = failing(lambda b: True, _Deadlock("deadlock detected"))
    with pytest.raises(DBAPIError):
        await split_on_conflict([8], always, settle)
    # Any other database error is no deadlock: it fails the batch as before, not retried.
    tries.clear()
    other = failing(lambda b: True, ConnectionError("server closed the connection"))
    with pytest.raises(DBAPIError):
        await split_on_conflict([1, 2], other, settle)
    assert tries == [[1, 2]]


async def test_two_batches_in_flight_rate_each_evaluation_once(services: Services) -> None:
    postgres = services.engine.dialect.name == "postgresql"
    assert services.ratings.writer.in_flight == (2 if postgres else 1)
    cases = [f"F{i}" for i in range(30)]
    await _register(services, *cases)
    # Every case rated by three attempts at once: the batches in flight share evaluations.
    requests = [_bad(c, f"agi:{c}:{n}", level=4 + n % 2) for n in range(3) for c in cases]
    outcomes = await asyncio.gather(
        *(services.ratings.rate(r, actor="ivr", now=START) for r in requests)
    )
    adopted = [o for o in outcomes if o.adopted]
    assert sorted(o.evaluation.case.case_no for o in adopted) == sorted(cases)
    assert await _count(services, Rating) == 3 * len(cases)
    assert await _count(services, Ticket) == len(cases)  # one per adopted bad rating
    async with services.sessions() as session:
        stored = (await session.execute(select(Evaluation))).scalars().all()
    assert {e.status for e in stored} == {"rated"}
    assert {e.adopted_rating_id for e in stored} == {o.rating.id for o in adopted}


async def test_adoption_finds_each_evaluation_by_id_whatever_the_backlog(
    services: Services,
) -> None:
    """The compare-and-set starts from the (evaluation, rating) pairs: with a backlog of pending
    evaluations, each batch still touches only its own (SQLite's planner used to read every
    pending evaluation through the status index, per batch)."""
    await _register(services, *(f"P{i}" for i in range(30)))
    first = await services.ratings.rate(RatingRequest("P0", 1, "api"), actor="api", now=START)
    sent: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE evaluations"):
            sent.append((statement, params))

    event.listen(services.engine.sync_engine, "before_cursor_execute", grab)
    async with services.sessions() as session:
        repo = Repository(session)
        evaluations = await repo.evaluation_records([f"P{i}" for i in range(4)])
        assert [r.id for r in evaluations["P0"].ratings] == [first.rating.id]
        stored = [_rating(services, evaluations[f"P{i}"].id, f"pair:{i}") for i in range(1, 4)]
        await repo.insert_all(stored)
        pairs = [(evaluations["P0"].id, stored[0].id)]  # P0 is rated already: it stays so
        pairs += [(r.evaluation_id, r.id) for r in stored]
        won = await repo.adopt_many(pairs, "rated")
        await session.commit()
    event.remove(services.engine.sync_engine, "before_cursor_execute", grab)
    assert won == {r.evaluation_id for r in stored}
    for i, rating in enumerate(stored, start=1):
        evaluation = await services.ratings.evaluation(f"P{i}")
        assert (evaluation.status, evaluation.adopted_rating_id) == ("rated", rating.id)
    assert (await services.ratings.evaluation("P0")).adopted_rating_id == first.rating.id
    assert (await services.ratings.evaluation("P9")).status == "pending"
    if services.engine.dialect.name != "sqlite":
        return
    [(statement, params)] = sent
    async with services.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        plan = await raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)  # type: ignore[union-attr]
        steps = " | ".join(str(row[3]) for row in await plan.fetchall())
    assert "evaluations USING INTEGER PRIMARY KEY" in steps, steps
    assert "ix_evaluations" not in steps, steps


def _rating(services: Services, evaluation_id: int, ref: str) -> Rating:
    request = RatingRequest("-", 2, "api", source_ref=ref)
    checked = check_rating(services.profile, 2, "api", None, None, require_reason=False)
    return new_rating(services.profile, checked, request, evaluation_id, START)
