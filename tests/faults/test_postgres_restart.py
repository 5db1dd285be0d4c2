"""PostgreSQL restarted (an immediate stop, as in a crash) in the middle of ratings, of the
outbox worker's posts and of the default-rating sweep.

What goes in and what comes out is counted (tests/faults/ledger.py): every rating stored once,
every ticket once, every outbox item delivered once the store can be reached, nothing doubled.
Bad inputs tried: requests while the server is down (refused with an error, nothing half
written), pooled connections left dead by the restart, a worker whose acknowledgement could
not be written (the store got the post, the database never heard: the repeat carries the same
key and the store keeps one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from pingjia.composition import Services, build_services
from rating.cases.registration import ServiceRecord
from rating.errors import Conflict
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from scheduler.sweeps import DefaultRatings
from tests.conftest import make_settings
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.faults.ledger import read_ledger
from tests.throwaway import ThrowawayPostgres

pytestmark = pytest.mark.postgres

GOOD, BAD = 2, 4  # taishan: 2 满意; 4 不满意 opens a 差评工单


@pytest.fixture
async def svc(fault_db: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    built = await build_services(
        make_settings(fault_db, tmp_path), migrate=False, clock=clock, state=MemoryState()
    )
    yield built
    await built.close()


@pytest.fixture
async def store() -> AsyncIterator[FakeCentralStore]:
    fake = FakeCentralStore()
    await fake.start()
    yield fake
    await fake.stop()


async def register(services: Services, n: int) -> list[str]:
    now = services.clock()
    cases = [f"F{i:04d}" for i in range(n)]
    for case_no in cases:
        await services.ratings.register(
            ServiceRecord(case_no, "complaint", "13812345678", now - timedelta(hours=1)),
            actor="test",
            now=now,
        )
    return cases


def level_of(case_no: str) -> int:
    return BAD if int(case_no[1:]) % 3 == 0 else GOOD


async def rate(services: Services, case_no: str) -> None:
    """A client that retries until answered: success, or 409 (already rated) for a retry whose
    first try was committed before the connection died."""
    level = level_of(case_no)
    request = RatingRequest(
        case_no,
        level,
        "api",
        tags=["staff_passive"] if level == BAD else None,
        source_ref=f"client-{case_no}",
    )
    for _ in range(50):
        try:
            await services.ratings.rate(request, actor="test", now=services.clock())
            return
        except Conflict:
            return
        except Exception:  # the database is down or its connection died: try again
            await asyncio.sleep(0.1)
    raise AssertionError(f"{case_no} never rated")


async def test_ratings_across_a_crash_and_restart_are_stored_once(
    svc: Services, fault_postgres: ThrowawayPostgres
) -> None:
    cases = await register(svc, 30)
    before, during, after = cases[:10], cases[10:20], cases[20:]
    await asyncio.gather(*(rate(svc, c) for c in before))

    fault_postgres.kill()  # the pool still holds connections to the dead server
    down = asyncio.gather(*(rate(svc, c) for c in during))  # retried while down
    await asyncio.sleep(0.5)
    fault_postgres.start()
    await down
    await asyncio.gather(*(rate(svc, c) for c in after))

    ledger = await read_ledger(svc.sessions)
    bad = sum(1 for c in cases if level_of(c) == BAD)
    assert ledger.adopted == 30 and ledger.evaluations_adopted_twice == 0
    assert ledger.ratings == 30  # a retry of a committed try is refused, not stored again
    assert ledger.tickets == bad and ledger.cases_ticketed_twice == 0
    assert ledger.outbox.get("central.rating") == 30


async def test_outbox_posts_across_a_restart_reach_the_store_once(
    svc: Services, fault_postgres: ThrowawayPostgres, store: FakeCentralStore, clock: FakeClock
) -> None:
    cases = await register(svc, 12)
    for case_no in cases:
        await rate(svc, case_no)
    expected = sum((await read_ledger(svc.sessions)).outbox.values())
    worker = OutboxWorker(svc.sessions, CentralStore(store.url, timeout=2), clock)

    # The store answers slowly; the database dies while the posts are in flight, so the
    # worker cannot record the acknowledgements.
    store.latency = 0.5
    run = asyncio.create_task(worker.run_once())
    await asyncio.sleep(0.2)
    fault_postgres.kill()
    with pytest.raises(Exception):  # noqa: B017 - whichever error the dead connection gives
        await run
    fault_postgres.start()
    store.latency = 0.0
    posted_blind = len(store.stored)
    assert posted_blind == expected  # the store has them; the database does not know

    # Claimed items come back when their lease ends; the repeats carry the same keys.
    clock.advance(seconds=int(worker.lease.total_seconds()) + 1)
    for _ in range(3):
        try:
            await worker.drain()
            break
        except Exception:  # the first use of a pooled connection the restart killed
            continue
    await worker.sender.close()  # type: ignore[attr-defined]

    ledger = await read_ledger(svc.sessions)
    assert ledger.outbox_sent == expected and ledger.outbox_waiting == 0
    assert len(store.stored) == expected  # every item once, though some were posted twice
    keys = [r.headers["Idempotency-Key"] for r in store.requests]
    assert set(keys) == set(store.stored)


async def test_default_rating_sweep_across_a_restart_rates_each_case_once(
    svc: Services, fault_postgres: ThrowawayPostgres, clock: FakeClock
) -> None:
    await register(svc, 20)
    sweep = DefaultRatings(svc.sessions, svc.ratings, "node-a")
    clock.advance(days=30)  # every case is past its rating window

    fault_postgres.kill()
    with pytest.raises(Exception):  # noqa: B017
        await sweep(clock())
    fault_postgres.start()
    done = 0
    for _ in range(5):
        try:
            done += await sweep(clock())
        except Exception:
            continue
    ledger = await read_ledger(svc.sessions)
    assert ledger.adopted == 20 and ledger.evaluations_adopted_twice == 0
    assert ledger.ratings == 20 and done == 20
    assert ledger.outbox.get("central.rating") == 20
