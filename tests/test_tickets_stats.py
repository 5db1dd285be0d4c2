"""GET /api/v1/stats, the nightly rollup, and second ratings (追评).

Bad inputs tried here: an agent or agency asking for statistics (403), a period without an
offset, `to` before `from`, an unknown group_by, an unknown query parameter, a second rating
without an invitation, a second rating replayed with the same source_ref.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.app import build_app
from pingjia.composition import Services
from rating.cases.registration import ServiceRecord
from rating.errors import Conflict
from rating.outbox.models import OutboxItem
from rating.ratings.requests import RatingRequest
from rating.ratings.second_rating import SecondRatings
from rating.tickets.service import Step, TicketService

PERIOD = {"from": "2026-11-20T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


async def token(services: Services, role: str) -> dict[str, str]:
    value = await services.tokens.create(role, f"{role}-x", services.clock())
    return {"Authorization": f"Bearer {value}"}


async def rate(
    services: Services, case_no: str, level: int, agency: str, channel: str = "api"
) -> str | None:
    now = services.clock()
    await services.ratings.register(
        ServiceRecord(case_no, "complaint", "13812345678", now - timedelta(hours=2), agency, "A1"),
        actor="t",
        now=now,
    )
    tags = ["staff_passive"] if level == 4 else None
    outcome = await services.ratings.rate(
        RatingRequest(case_no, level, channel, tags=tags), actor="t", now=now
    )
    return outcome.ticket.ticket_no if outcome.ticket else None


async def walk(tickets: TicketService, no: str, *steps: tuple[str, str, Step], now: Any) -> None:
    for action, role, step in steps:
        await tickets.act(no, action, step, role=role, actor=role, now=now)


@pytest.mark.article("sanmenxia", 15)
@pytest.mark.article("taishan", 22)
async def test_stats_by_agency_leave_not_adopted_out(
    client: TestClient, services: Services
) -> None:
    now = services.clock()
    await rate(services, "C1", 1, "甲局")
    await rate(services, "C2", 3, "甲局", channel="sms")
    rectified = await rate(services, "C3", 4, "甲局")
    malicious = await rate(services, "C4", 4, "乙局")
    assert rectified and malicious
    dispatch = ("dispatch", "agent", Step())
    await walk(
        services.tickets,
        rectified,
        dispatch,
        ("confirm", "agency", Step()),
        ("start_rectify", "agency", Step()),
        ("rectify", "agency", Step(feedback="已整改")),
        now=now,
    )
    await walk(
        services.tickets,
        malicious,
        dispatch,
        ("not_adopt", "bureau", Step(evidence="录音")),
        now=now,
    )
    bureau = await token(services, "bureau")
    response = await client.get(
        "/api/v1/stats", params={**PERIOD, "group_by": "agency"}, headers=bureau
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["from"].startswith("2026-11-20T00:00:00")
    totals = body["totals"]
    # Four ratings, one ruled malicious: three counted.
    assert totals["count"] == 3 and totals["levels"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 0}
    assert totals["satisfaction_rate"] == round(2 / 3, 4)
    assert totals["average_score"] == round((10 + 6 + 3) / 3, 2)
    assert (totals["tickets"], totals["rectified"], totals["not_adopted"]) == (2, 1, 1)
    assert totals["verified_on_time"] == 2 and totals["not_adopted_rate"] == 0.5
    groups = {g["key"]: g for g in body["groups"]}
    assert groups["甲局"]["count"] == 3 and groups["乙局"]["count"] == 0
    assert groups["乙局"]["not_adopted"] == 1
    by_channel = await client.get(
        "/api/v1/stats", params={**PERIOD, "group_by": "channel"}, headers=bureau
    )
    keys = {g["key"]: g["count"] for g in (await by_channel.json())["groups"]}
    assert keys == {"api": 2, "sms": 1}
    by_day = await client.get("/api/v1/stats", params={**PERIOD, "group_by": "day"}, headers=bureau)
    assert [g["key"] for g in (await by_day.json())["groups"]] == ["2026-11-20"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({**PERIOD, "group_by": "weather"}, 422),
        ({"from": "2026-11-20T00:00:00", "to": PERIOD["to"]}, 422),
        ({"from": PERIOD["to"], "to": PERIOD["from"]}, 422),
        ({**PERIOD, "colour": "red"}, 422),
        ({"to": PERIOD["to"]}, 422),
    ],
)
async def test_stats_bad_queries(
    client: TestClient, services: Services, params: dict[str, str], status: int
) -> None:
    response = await client.get(
        "/api/v1/stats", params=params, headers=await token(services, "admin")
    )
    assert response.status == status
    assert "error" in await response.json()


async def test_stats_forbidden_to_agents_and_agencies(
    client: TestClient, services: Services
) -> None:
    for role in ("agent", "agency"):
        response = await client.get(
            "/api/v1/stats", params=PERIOD, headers=await token(services, role)
        )
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"


async def test_nightly_rollup_is_idempotent(services: Services) -> None:
    await rate(services, "C1", 2, "甲局")
    await rate(services, "C2", 2, "乙局")
    night = services.clock() + timedelta(days=1)
    first = await services.stats.rollup(night, owner="p1")
    assert first == 4  # two agency cells, one agent cell, one channel cell (all level 2)
    assert await services.stats.rollup(night, owner="p2") == 0  # the day is leased by p1
    # After the lease, a rerun replaces the day's rows with the same figures.
    assert await services.stats.rollup(night + timedelta(hours=2), owner="p2") == 4
    rows = await services.stats.daily(date(2026, 11, 20))
    cells = {(r.group_by, r.group_key, r.level): r.count for r in rows}
    assert cells == {
        ("agency", "甲局", 2): 1,
        ("agency", "乙局", 2): 1,
        ("agent", "A1", 2): 2,
        ("channel", "api", 2): 2,
    }


async def test_second_rating_after_a_closed_ticket(services: Services) -> None:
    profile = services.profile.model_copy(update={"second_rating": True})
    tickets = TicketService(services.sessions, profile)
    second = SecondRatings(services.sessions, profile, services.vault)
    now = services.clock()
    no = await rate(services, "C1", 4, "甲局")
    assert no
    with pytest.raises(Conflict):
        await second.rate_second("C1", 2, "sms", actor="t", now=now)
    await walk(
        tickets,
        no,
        ("dispatch", "agent", Step()),
        ("confirm", "agency", Step()),
        ("start_rectify", "agency", Step()),
        ("rectify", "agency", Step(feedback="已整改")),
        ("close", "agent", Step()),
        now=now,
    )
    [invite] = await second.due_invitations(now)
    assert invite.case_no == "C1" and invite.phone == "13812345678"
    await second.mark_sent(invite.invite_id, now)
    assert await second.due_invitations(now) == []
    rating = await second.rate_second("C1", 2, "sms", source_ref="SM1", actor="t", now=now)
    again = await second.rate_second("C1", 2, "sms", source_ref="SM1", actor="t", now=now)
    assert again.id == rating.id and rating.attempt == 2
    evaluation = await services.ratings.evaluation("C1")
    assert [(r.level, r.attempt, r.adopted) for r in evaluation.ratings] == [
        (4, 1, True),
        (2, 2, False),
    ]
    async with services.sessions() as session:
        payloads = (
            await session.execute(
                select(OutboxItem.payload).where(OutboxItem.topic == "central.rating")
            )
        ).scalars()
        assert [p["attempt"] for p in payloads] == [1, 2]
