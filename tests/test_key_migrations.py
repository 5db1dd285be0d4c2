"""Issue 16's migrations on SQLite and PostgreSQL: down and up again, matching the models.

Faults tried: a downgrade with rows present (the table or column goes, the other rows stay),
an upgrade over rows written before the revision.
"""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from pingjia.composition import Services
from rating.access.idempotency import IdempotencyKeys
from rating.db import engine as db
from rating.db.base import Base
from rating.outbox.models import OutboxItem
from rating.tickets.models import Ticket
from tests.test_api import agent, client, register  # noqa: F401 (fixtures)
from tests.test_outbox_keys import KEY
from tests.test_ticket_numbers import rate


async def tables(services: Services) -> dict[str, set[str]]:
    async with services.engine.connect() as conn:

        def read(sync: object) -> dict[str, set[str]]:
            found = inspect(sync)
            return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}

        return await conn.run_sync(read)


async def migrate(services: Services, verb: str, target: str) -> None:
    config = db.alembic_config(services.settings.database_url)
    await services.engine.dispose()
    await asyncio.to_thread(getattr(command, verb), config, target)
    await services.engine.dispose()


async def no_drift(services: Services, table: str) -> None:
    async with services.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert [d for d in diff if table in repr(d)] == []


async def test_idempotency_keys_migration_goes_both_ways(services: Services) -> None:
    keys = IdempotencyKeys(services.sessions, services.clock)
    assert await keys.claim("k-1", "POST /api/v1/ratings", {"level": 1}, "agent:a")
    await migrate(services, "downgrade", "0008_idempotency_keys@-1")
    after = await tables(services)
    assert "idempotency_keys" not in after and "agency" in after["api_tokens"]  # this branch only
    await migrate(services, "upgrade", "heads")
    assert "idempotency_keys" in await tables(services)
    await no_drift(services, "idempotency_keys")
    # A fresh table: the key is new again (the ratings keep their own source_ref replay).
    assert await keys.claim("k-1", "POST /api/v1/ratings", {"level": 2}, "agent:a")


async def test_ticket_counter_migration_starts_past_the_old_numbers(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    """Tickets numbered before 0009 carry their rating's id as serial: after the upgrade the
    counter starts past the highest, so the next number is new (ticket C3 after two refused
    ratings of C1 gets serial 5 here, the old way: a gap, but never a repeat)."""
    for case_no in ("C1", "C2", "C3"):
        await register(client, agent, case_no=case_no)
    await rate(client, agent, "C1", 4)  # ticket 0001
    await migrate(services, "downgrade", "0009_ticket_counter@-1")
    after = await tables(services)
    assert "ticket_counters" not in after and "agency" in after["api_tokens"]  # this branch only
    for _ in range(2):  # refused ratings 2 and 3
        assert (await rate(client, agent, "C1", 4)).status == 409
    async with services.sessions() as session:  # the old code's number: its rating's id
        session.add(
            Ticket(
                case_id=1,
                evaluation_id=1,
                rating_id=3,
                level=4,
                ticket_no="2611190003",
                created_at=services.clock(),
            )
        )
        await session.commit()
    await migrate(services, "upgrade", "heads")
    await no_drift(services, "ticket_counters")
    third = await rate(client, agent, "C3", 4)
    assert (await third.json())["ticket"]["ticket_no"] == "2611200004"


async def test_token_last_used_migration_goes_both_ways(services: Services) -> None:
    token = await services.tokens.create("agent", "window", services.clock())
    assert await services.tokens.authenticate(token) is not None  # sets last_used_at
    await migrate(services, "downgrade", "0010_token_last_used@-1")
    after = await tables(services)
    assert "last_used_at" not in after["api_tokens"] and "agency" in after["api_tokens"]
    await migrate(services, "upgrade", "heads")
    await no_drift(services, "api_tokens")
    [info] = await services.tokens.list_tokens()  # the token survived; its last use is unknown
    assert info.name == "window" and info.last_used_at is None


async def test_outbox_keys_migration_rekeys_untried_rows_only(services: Services) -> None:
    await migrate(services, "downgrade", "0011_outbox_global_keys@-1")
    now = services.clock()
    rows = [  # as the older code wrote them: the row id in the key
        ("central.rating", "rating-1", 0, None),
        ("central.rating", "rating-2", 3, None),  # tried: the store may hold it
        ("central.ticket", "ticket-1-1", 1, now),  # sent
        ("central.rating.update", "rating-1-reason", 0, None),
    ]
    async with services.sessions() as session:
        session.add_all(
            OutboxItem(
                topic=topic,
                ordering_key="evaluation:1",
                idempotency_key=key,
                payload={},
                attempts=attempts,
                sent_at=sent,
                next_attempt_at=now,
                created_at=now,
            )
            for topic, key, attempts, sent in rows
        )
        await session.commit()
    await migrate(services, "upgrade", "heads")

    async def keys() -> list[str]:
        async with services.sessions() as session:
            found = await session.execute(select(OutboxItem).order_by(OutboxItem.id))
            return [r.idempotency_key for r in found.scalars()]

    upgraded = await keys()
    assert KEY.fullmatch(upgraded[0]) and upgraded[0].startswith("rating-")
    assert upgraded[1:3] == ["rating-2", "ticket-1-1"]
    assert KEY.fullmatch(upgraded[3]) and upgraded[3].startswith("rating-update-")
    await migrate(services, "downgrade", "0011_outbox_global_keys@-1")
    assert await keys() == upgraded  # the older code sends the keys as they are
    await migrate(services, "upgrade", "heads")
    await no_drift(services, "outbox")
