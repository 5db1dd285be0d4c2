"""A reason added after the rating reaches the central store (`central.rating.update`).

By SMS (the "ask for a reason" reply) and by the link's add-reason mode, on SQLite and
PostgreSQL, drained to the fake central store. Faults tried: the reason sent twice (one
update), a store that refuses the update the first time (retried with the same key, after
the rating, in order), a store that does not know PUT (aiohttp's own 405: retried, then
dead-lettered with a console alert), tags from the link with no free text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from sqlalchemy import select

from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from pingjia.composition import Services
from ratepage.links import Links
from rating.outbox.models import OutboxItem
from rating.tickets.models import Ticket
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.sms_support import register, reply, sent

CASE = "C2026112000001"


@pytest.fixture
async def store() -> AsyncIterator[FakeCentralStore]:
    fake = FakeCentralStore()
    await fake.start()
    yield fake
    await fake.stop()


async def outbox(services: Services) -> list[OutboxItem]:
    async with services.sessions() as session:
        rows = await session.execute(select(OutboxItem).order_by(OutboxItem.id))
        return list(rows.scalars())


async def asked_for_a_reason(services: Services, clock: FakeClock) -> None:
    await register(services)
    clock.advance(minutes=3)
    await services.sms.send_due_invitations(clock())
    assert (await reply(services, "5", "SM1")).outcome == "asked_reason"


async def drain(services: Services, store: FakeCentralStore, clock: FakeClock) -> None:
    worker = OutboxWorker(
        services.sessions,
        CentralStore(store.url),
        clock,
        dead_letter=services.alerts.dead_letter,
        max_attempts=3,
    )
    try:
        await worker.drain(clock())
    finally:
        await worker.sender.close()  # type: ignore[attr-defined]


async def test_sms_reason_follows_the_rating_to_the_store(
    services: Services, clock: FakeClock, store: FakeCentralStore
) -> None:
    await asked_for_a_reason(services, clock)
    assert (await reply(services, "窗口态度太差", "SM2")).outcome == "reason_added"
    assert (await reply(services, "窗口态度太差", "SM2")).outcome == "duplicate"
    rows = await outbox(services)
    assert [r.topic for r in rows] == ["central.rating", "central.rating.update"]
    assert rows[0].ordering_key == rows[1].ordering_key
    # Each row its own key (a UUID, issue 16.7): the update is another item than the rating.
    assert rows[1].idempotency_key.startswith("rating-update-")
    assert rows[0].idempotency_key.startswith("rating-")
    assert rows[1].idempotency_key != rows[0].idempotency_key
    assert rows[1].payload["comment"] == "窗口态度太差" and rows[1].payload["update"] is True
    assert rows[1].payload["case_no"] == CASE and rows[1].payload["attempt"] == 1
    async with services.sessions() as session:
        [ticket] = (await session.execute(select(Ticket))).scalars()
    assert ticket.reason == "窗口态度太差"

    store.script("/ratings", 503, {"error": "busy"}, times=1)
    await drain(services, store, clock)  # the rating's POST fails: the update waits behind it
    assert [(r.method, r.answered) for r in store.requests] == [("POST", 503)]
    clock.advance(minutes=5)
    await drain(services, store, clock)
    assert [(r.method, r.answered) for r in store.requests] == [
        ("POST", 503),
        ("POST", 201),
        ("PUT", 201),
    ]
    put = store.requests[-1]
    assert put.headers["Idempotency-Key"] == rows[1].idempotency_key
    assert (put.json["comment"], put.json["satisfaction"]) == ("窗口态度太差", "非常不满意")


class PostOnlyStore(FakeCentralStore):
    """A store that never learnt updates: aiohttp answers its PUT with 405 by itself."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/ratings", self._accept)


async def test_link_tags_reach_the_store_and_a_put_refused_is_dead_lettered(
    services: Services, clock: FakeClock
) -> None:
    await asked_for_a_reason(services, clock)
    links = Links(services.sessions, services.profile, services.ratings)
    token = sent(services)[-1].params["link"].rsplit("/", 1)[1]
    view = await links.view(token, clock())
    assert view.evaluation is not None and view.rating is not None
    await links.add_reason(token, view.evaluation, view.rating, ["running_around"], None, clock())
    update = (await outbox(services))[-1]
    assert update.topic == "central.rating.update" and update.payload["comment"] == ""
    assert update.payload["tags"] == [services.profile.tag("running_around").text]  # type: ignore[union-attr]

    old_store = PostOnlyStore()
    await old_store.start()
    try:
        await drain(services, old_store, clock)
        for _ in range(3):
            clock.advance(hours=2)
            await drain(services, old_store, clock)
    finally:
        await old_store.stop()
    assert [(r.method, r.answered) for r in old_store.requests] == [("POST", 201)]
    rows = await outbox(services)
    assert rows[0].sent_at is not None and rows[1].sent_at is None
    assert rows[1].dead_at is not None and "405" in (rows[1].last_error or "")
    [alert] = await services.alerts.list(None, None, 10)
    assert alert.kind == "dead_letter" and "central.rating.update" in alert.message
