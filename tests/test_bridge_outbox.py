"""The outbox worker against a fake central store (a real server on 127.0.0.1).

Bad inputs and faults tried here: a store failing its first two requests (500), a store that
stalls past the client's timeout, a store answering a repeat with 409, a store that never
recovers (dead letter after N tries), a store unreachable (connection refused), items of one
evaluation posted while the first still fails (order kept).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bridge.backoff import Backoff
from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from pingjia.composition import Services
from rating.cases.registration import ServiceRecord
from rating.outbox.models import OutboxItem
from rating.ratings.requests import RatingRequest
from rating.tickets.repository import TicketFilter
from rating.tickets.service import Step
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock


@pytest.fixture
async def store() -> AsyncIterator[FakeCentralStore]:
    fake = FakeCentralStore()
    await fake.start()
    yield fake
    await fake.stop()


def worker(services: Services, url: str, clock: FakeClock, **kw: object) -> OutboxWorker:
    options: dict[str, object] = {
        "backoff": Backoff(base=10, cap=600, rng=random.Random(7)),
        "max_attempts": 4,
    }
    options.update(kw)
    return OutboxWorker(
        services.sessions,
        CentralStore(url, timeout=0.5),
        clock,
        dead_letter=services.alerts.dead_letter,
        **options,  # type: ignore[arg-type]
    )


async def rated(services: Services, case_no: str, level: int = 2) -> None:
    now = services.clock()
    await services.ratings.register(
        ServiceRecord(case_no, "complaint", "13812345678", now - timedelta(hours=1)),
        actor="test",
        now=now,
    )
    await services.ratings.rate(
        RatingRequest(case_no, level, "api", tags=["staff_passive"] if level == 4 else None),
        actor="test",
        now=now,
    )


async def items(services: Services) -> list[OutboxItem]:
    async with services.sessions() as session:
        result = await session.execute(select(OutboxItem).order_by(OutboxItem.id))
        return list(result.scalars())


async def later(clock: FakeClock, run: OutboxWorker) -> None:
    """Move past any backoff and run once."""
    clock.advance(minutes=15)
    await run.run_once()


async def test_store_failing_twice_gets_the_rating_once_with_one_key(
    services: Services, store: FakeCentralStore, clock: FakeClock
) -> None:
    await rated(services, "C1")
    store.script("/ratings", 500, {"error": "down"}, times=2)
    run = worker(services, store.url, clock)
    try:
        first = await run.run_once()
        assert (first.sent, first.retried) == (0, 1)
        assert (await run.run_once()).handled == 0  # backing off: not due yet
        await later(clock, run)
        await later(clock, run)
    finally:
        await run.sender.close()  # type: ignore[attr-defined]
    calls = store.to("/ratings")
    assert [c.answered for c in calls] == [500, 500, 201]
    keys = {c.headers["Idempotency-Key"] for c in calls}
    assert len(keys) == 1 and len(store.stored) == 1
    payload = calls[-1].json
    assert payload["case_no"] == "C1" and payload["rater"] == "138****5678"
    assert payload["satisfaction_code"] == "2" and payload["attempt"] == 1
    [item] = await items(services)
    assert item.sent_at is not None and item.attempts == 3 and item.last_error is None


async def test_backoff_grows_and_is_jittered() -> None:
    backoff = Backoff(base=10, factor=2, cap=100, jitter=0.5, rng=random.Random(1))
    delays = [backoff.delay(n).total_seconds() for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        raw = min(100, 10 * 2 ** (n - 1))
        assert raw * 0.5 <= delay <= raw
    assert len({round(d, 6) for d in delays}) == len(delays)


async def test_stall_and_duplicate_answers(
    services: Services, store: FakeCentralStore, clock: FakeClock
) -> None:
    await rated(services, "C1")
    store.script("/ratings", 200, times=1, delay=2.0)  # longer than the 0.5 s timeout
    run = worker(services, store.url, clock)
    try:
        assert (await run.run_once()).retried == 1
        # The stalled request reached the store; pretend it stored it, and answer repeats 409.
        store.duplicate_status = 409
        store.stored[(await items(services))[0].idempotency_key] = {}
        await later(clock, run)
    finally:
        await run.sender.close()  # type: ignore[attr-defined]
    [item] = await items(services)
    assert item.sent_at is not None
    # The stalled try was cut off by our timeout (no answer recorded); the repeat got 409.
    assert [c.answered for c in store.to("/ratings")] == [0, 409]


async def test_order_kept_per_evaluation_and_dead_letter_unblocks(
    services: Services, store: FakeCentralStore, clock: FakeClock
) -> None:
    await rated(services, "C-bad", level=4)
    [ticket] = await services.tickets.list(TicketFilter(), clock())
    no = ticket.ticket.ticket_no or ""
    await services.tickets.act(
        no, "dispatch", Step(agency="X"), role="agent", actor="a", now=clock()
    )
    await services.tickets.act(no, "confirm", Step(), role="agency", actor="b", now=clock())
    bad_key = (await items(services))[0].idempotency_key
    store.script("/ratings", 503, times=None)  # this store never takes ratings again
    run = worker(services, store.url, clock)
    try:
        await run.run_once()
        for _ in range(3):
            await later(clock, run)
        await later(clock, run)
    finally:
        await run.sender.close()  # type: ignore[attr-defined]
    outbox = await items(services)
    by_key = {i.idempotency_key: i for i in outbox}
    assert by_key[bad_key].dead_at is not None and by_key[bad_key].attempts == 4
    # The ticket result waited behind its rating while the rating was retried, then went out.
    tickets = store.to("/tickets")
    assert len(tickets) == 1
    last_rating_try = max(i for i, r in enumerate(store.requests) if r.path == "/ratings")
    assert store.requests.index(tickets[0]) > last_rating_try
    alerts = await services.alerts.list(None, None, 10)
    assert [a.kind for a in alerts] == ["dead_letter"]
    assert bad_key in alerts[0].message


async def test_unreachable_store_keeps_items(services: Services, clock: FakeClock) -> None:
    await rated(services, "C1")
    run = worker(services, "http://127.0.0.1:9", clock)  # nothing listens on port 9
    try:
        tally = await run.run_once()
    finally:
        await run.sender.close()  # type: ignore[attr-defined]
    assert tally.retried == 1
    [item] = await items(services)
    assert item.sent_at is None and item.dead_at is None
    assert item.next_attempt_at > clock() and "Connect" in (item.last_error or "")


def test_fake_clock_is_aware(clock: FakeClock) -> None:
    assert isinstance(clock(), datetime) and clock().tzinfo is not None
