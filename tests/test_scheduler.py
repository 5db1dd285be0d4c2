"""Scheduler sweeps: default ratings, deadline alerts and the outbox, with two schedulers at once.

Two `Services` built on one PostgreSQL database stand for two `pingjia` processes (separate
engines, separate connections). Faults tried: two sweeps claiming the same rows at the same
moment, a sweep run twice over the same rows, a lease left by a process that died, a
sweep that raises (the scheduler logs it and carries on), alerts for a ticket without an
agency (no contact to send them to).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from pingjia.composition import Services, build_services
from rating.cases.models import Evaluation, Rating
from rating.cases.registration import ServiceRecord
from rating.outbox.models import OutboxItem
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from rating.sweeps.claims import ClaimRepository
from rating.sweeps.models import SweepClaim
from scheduler.runner import Scheduler, Sweep
from scheduler.sweeps import DefaultRatings
from tests.conftest import _clean_postgres, make_settings
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock


async def register_many(services: Services, count: int, days_ago: float = 8) -> None:
    completed = services.clock() - timedelta(days=days_ago)
    for n in range(count):
        await services.ratings.register(
            ServiceRecord(f"C{n:05d}", "consultation", "13812345678", completed),
            actor="test",
            now=services.clock(),
        )


async def scalar(services: Services, query: object) -> int:
    async with services.sessions() as session:
        return int((await session.execute(query)).scalar_one())  # type: ignore[call-overload]


@pytest.fixture
async def twin(
    postgres_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Services, Services]]:
    """Two services over the same fresh PostgreSQL database, like two processes."""
    await _clean_postgres(postgres_url)
    pair = []
    for n in range(2):
        pair.append(
            await build_services(
                make_settings(postgres_url, tmp_path / str(n)),
                migrate=False,
                clock=clock,
                state=MemoryState(),
            )
        )
    yield pair[0], pair[1]
    for built in pair:
        await built.close()


@pytest.mark.postgres
async def test_two_schedulers_default_each_evaluation_exactly_once(
    twin: tuple[Services, Services],
) -> None:
    one, _ = twin
    await register_many(one, 150)
    sweeps = [
        DefaultRatings(s.sessions, s.ratings, owner=f"p{n}", batch=7) for n, s in enumerate(twin)
    ]
    now = one.clock()
    done = await asyncio.gather(sweeps[0](now), sweeps[1](now))
    assert sum(done) == 150
    assert min(done) > 0, f"both processes should have taken a share, got {done}"
    assert await scalar(one, select(func.count()).where(Evaluation.status == "defaulted")) == 150
    # One system rating per evaluation: nobody rated twice, nothing "recorded but not applied".
    assert await scalar(one, select(func.count()).where(Rating.channel == "system")) == 150
    assert await scalar(one, select(func.count(func.distinct(Rating.evaluation_id)))) == 150
    assert await scalar(one, select(func.count()).select_from(SweepClaim)) == 0
    # Run again: nothing left to do.
    assert list(await asyncio.gather(sweeps[0](now), sweeps[1](now))) == [0, 0]


@pytest.mark.article("taishan", 17)
async def test_default_rating_uses_the_profile_and_waits_for_its_time(services: Services) -> None:
    await register_many(services, 3, days_ago=6.9)
    sweep = DefaultRatings(services.sessions, services.ratings, owner="me")
    assert await sweep(services.clock()) == 0
    done = await sweep(services.clock() + timedelta(hours=3))
    assert done == 3
    evaluation = await services.ratings.evaluation("C00000")
    assert evaluation.status == "defaulted"
    [rating] = evaluation.ratings
    assert (rating.level, rating.channel, rating.source_ref) == (
        1,
        "system",
        f"default:{evaluation.id}",
    )
    async with services.sessions() as session:
        payloads = (await session.execute(select(OutboxItem.payload))).scalars().all()
    assert {p["channel"] for p in payloads} == {
        services.profile.central_store.channel_codes["system"]
    }


async def test_expired_lease_of_a_dead_process_is_taken_over(services: Services) -> None:
    await register_many(services, 2)
    now = services.clock()
    async with services.sessions() as session:
        dead = await ClaimRepository(session).claim_due_defaults(
            now, "dead-process", now + timedelta(minutes=5), 10
        )
        await session.commit()
    assert len(dead) == 2
    sweep = DefaultRatings(services.sessions, services.ratings, owner="alive")
    assert await sweep(now) == 0  # leased by a process that is gone: wait out the lease
    assert await sweep(now + timedelta(minutes=6)) == 2


async def test_real_rating_before_the_sweep_wins(services: Services) -> None:
    await register_many(services, 1)
    now = services.clock()
    await services.ratings.rate(RatingRequest("C00000", 2, "sms"), actor="t", now=now)
    assert await DefaultRatings(services.sessions, services.ratings, owner="me")(now) == 0
    evaluation = await services.ratings.evaluation("C00000")
    assert evaluation.status == "rated" and len(evaluation.ratings) == 1


@pytest.mark.postgres
async def test_two_outbox_workers_post_each_item_once(twin: tuple[Services, Services]) -> None:
    one, _ = twin
    await register_many(one, 40)
    for n in range(40):
        await one.ratings.rate(RatingRequest(f"C{n:05d}", 2, "sms"), actor="t", now=one.clock())
    store = FakeCentralStore(latency=0.01)
    await store.start()
    workers = [
        OutboxWorker(s.sessions, CentralStore(store.url), s.clock, batch=5, concurrency=4)
        for s in twin
    ]
    try:
        tallies = await asyncio.gather(*(w.drain() for w in workers))
    finally:
        for w in workers:
            await w.sender.close()  # type: ignore[attr-defined]
        await store.stop()
    assert sum(t.sent for t in tallies) == 40 and min(t.sent for t in tallies) > 0
    keys = [r.headers["Idempotency-Key"] for r in store.requests]
    assert len(keys) == len(set(keys)) == 40


@pytest.mark.postgres
async def test_two_alert_sweeps_record_each_alert_once(twin: tuple[Services, Services]) -> None:
    one, two = twin
    await register_many(one, 20, days_ago=1)
    for n in range(20):
        await one.ratings.rate(
            RatingRequest(f"C{n:05d}", 4, "api", tags=["staff_passive"]), actor="t", now=one.clock()
        )
    later = one.clock() + timedelta(days=30)  # past every callback deadline and a day more
    counts = await asyncio.gather(
        one.alerts.sweep_deadlines(later, limit=3), two.alerts.sweep_deadlines(later, limit=3)
    )
    while True:
        more = await asyncio.gather(
            one.alerts.sweep_deadlines(later, limit=3), two.alerts.sweep_deadlines(later, limit=3)
        )
        if sum(more) == 0:
            break
        counts = [a + b for a, b in zip(counts, more, strict=True)]
    assert sum(counts) == 20
    alerts = await one.alerts.list(None, None, 100)
    assert len(alerts) == 20 and {a.phase for a in alerts} == {"after"}
    assert {a.sms_status for a in alerts} == {"skipped"}
    # No agency and so no contact: on the console only (tests/test_alert_sms.py sends them).
    assert {a.sms_detail for a in alerts} == {"sms skipped: no contact for agency None"}
    assert "已超期" in alerts[0].message


async def test_scheduler_runs_sweeps_in_the_loop_and_survives_a_failure(clock: FakeClock) -> None:
    seen: list[str] = []

    async def fine(now: object) -> int:
        seen.append("fine")
        return 1

    async def broken(now: object) -> int:
        raise RuntimeError("boom")

    scheduler = Scheduler(
        [
            Sweep("broken", broken, every=timedelta(seconds=0.05)),
            Sweep("fine", fine, every=timedelta(seconds=0.05)),
        ],
        clock,
        clock().tzinfo,  # type: ignore[arg-type]
    )
    scheduler.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        scheduler.shutdown()
    assert len(seen) >= 2 and scheduler.runs["fine"] >= 2
    assert await scheduler.run_all() == {"broken": 0, "fine": 1}


async def test_a_sweep_outlasting_its_interval_is_not_a_warning_each_time(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """APScheduler warns at every trigger that finds the sweep still running: by design here
    (max_instances=1), so counted instead of logged; its other warnings still pass."""

    async def slow(now: object) -> int:
        await asyncio.sleep(0.4)
        return 1

    scheduler = Scheduler(
        [Sweep("slow", slow, every=timedelta(seconds=0.05))],
        clock,
        clock().tzinfo,  # type: ignore[arg-type]
    )
    caplog.set_level(logging.WARNING, logger="apscheduler.scheduler")
    scheduler.start()
    try:
        await asyncio.sleep(0.5)
        logging.getLogger("apscheduler.scheduler").warning("something else went wrong")
    finally:
        scheduler.shutdown()
    assert scheduler.overlaps.skipped >= 3
    messages = [r.getMessage() for r in caplog.records if r.name == "apscheduler.scheduler"]
    assert messages == ["something else went wrong"]
