"""Ticket numbers are taken only by tickets that exist (issue 16.3), on SQLite and PostgreSQL.

Bad inputs tried here: a second bad rating of a case already rated (409 already_rated), twice,
between tickets; a good rating between tickets; on PostgreSQL, bad ratings of many cases at
once (each in its own request, so in concurrent transactions). The serials run without a gap.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.tickets.numbering import take_serials
from tests.test_api import agent, client, register  # noqa: F401 (fixtures)


async def rate(client: TestClient, agent: dict[str, str], case_no: str, level: int) -> Any:  # noqa: F811
    body: dict[str, Any] = {"case_no": case_no, "level": level}
    if level >= 4:
        body |= {"tags": ["staff_passive"], "reason": "慢"}
    return await client.post("/api/v1/ratings", json=body, headers=agent)


async def test_refused_ratings_take_no_number(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    numbers = []
    for case_no in ("C1", "C2", "C3"):
        await register(client, agent, case_no=case_no)
    first = await rate(client, agent, "C1", 4)
    numbers.append((await first.json())["ticket"]["ticket_no"])
    for _ in range(2):  # refused: the case is rated; these must not use up a number
        again = await rate(client, agent, "C1", 4)
        assert again.status == 409 and (await again.json())["error"]["code"] == "already_rated"
    good = await rate(client, agent, "C2", 1)
    assert good.status == 201 and (await good.json())["ticket"] is None
    third = await rate(client, agent, "C3", 4)
    numbers.append((await third.json())["ticket"]["ticket_no"])
    assert numbers == ["2611200001", "2611200002"], numbers
    async with services.sessions() as session:
        audited = (
            await session.execute(
                select(AuditEntry.entity_id).where(AuditEntry.action == "ticket.created")
            )
        ).scalars()
        assert sorted(audited) == numbers


async def test_concurrent_tickets_get_distinct_consecutive_numbers(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
) -> None:
    cases = [f"P{i}" for i in range(12)]
    for case_no in cases:
        await register(client, agent, case_no=case_no)
    # Each case twice at once: one rating wins and opens a ticket, the other is refused.
    responses = await asyncio.gather(*(rate(client, agent, c, 4) for c in cases + cases))
    assert sorted(r.status for r in responses) == [201] * 12 + [409] * 12
    numbers = sorted(
        [(await r.json())["ticket"]["ticket_no"] for r in responses if r.status == 201]
    )
    assert numbers == [f"261120{n:04d}" for n in range(1, 13)], numbers


async def test_serials_rolled_back_are_given_again_under_concurrency(services: Services) -> None:
    """Transactions taking serials at once, half of them rolled back: the committed serials
    are 1..n without a gap or a repeat (PostgreSQL: the counter row's lock orders them)."""
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; the race needs PostgreSQL")

    async def one(i: int) -> int | None:
        async with services.sessions() as session:
            [serial] = await take_serials(session, 1)
            await asyncio.sleep(0.01 * (i % 3))  # hold the lock a while, as a batch would
            if i % 2:
                await session.rollback()
                return None
            await session.commit()
            return serial

    kept = [s for s in await asyncio.gather(*(one(i) for i in range(16))) if s is not None]
    assert sorted(kept) == list(range(1, 9)), kept
