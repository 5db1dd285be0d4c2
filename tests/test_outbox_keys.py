"""The central store's Idempotency-Key is unique across every sender (issue 16.7).

Two installations (two databases) used to send `rating-1` each for their first rating, and the
store dropped the second as a repeat. Now each outbox row gets a UUID4 key when it is written,
stored with it, the same on every retry. Faults tried: two installations rating their first
case, a store that answers 503 to the first try of a rating and of a ticket step.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pingjia.composition import Services, build_services
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.sms_support import register
from tests.test_late_reason import drain, outbox

KEY = re.compile(
    r"(rating|rating-update|ticket)-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


@pytest.fixture
async def store() -> AsyncIterator[FakeCentralStore]:
    fake = FakeCentralStore()
    await fake.start()
    yield fake
    await fake.stop()


async def first_rating(services: Services) -> None:
    await register(services, "C1")
    await services.ratings.rate(
        RatingRequest("C1", 4, "api", tags=["staff_passive"]), actor="t", now=services.clock()
    )


async def test_two_installations_send_different_keys(
    services: Services, clock: FakeClock, tmp_path: Path, store: FakeCentralStore
) -> None:
    other = await build_services(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/other.db", tmp_path / "other"),
        clock=clock,
        state=MemoryState(),
    )
    try:
        for installation in (services, other):
            await first_rating(installation)
            await drain(installation, store, clock)
        [ours] = await outbox(services)
        [theirs] = await outbox(other)
    finally:
        await other.close()
    assert KEY.fullmatch(ours.idempotency_key) and KEY.fullmatch(theirs.idempotency_key)
    assert ours.idempotency_key != theirs.idempotency_key
    sent = [r.headers["Idempotency-Key"] for r in store.requests]
    assert sent == [ours.idempotency_key, theirs.idempotency_key]


async def test_a_retry_sends_the_stored_key(
    services: Services, clock: FakeClock, store: FakeCentralStore
) -> None:
    await first_rating(services)
    store.script("/ratings", 503, {"error": "busy"}, times=1)
    await drain(services, store, clock)
    clock.advance(minutes=5)
    await drain(services, store, clock)
    [row] = await outbox(services)
    assert [(r.answered, r.headers["Idempotency-Key"]) for r in store.requests] == [
        (503, row.idempotency_key),
        (201, row.idempotency_key),
    ]
