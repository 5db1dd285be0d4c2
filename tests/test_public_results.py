"""Public results (issue 17 item 5; Sanmenxia Art. 16, Taishan Art. 23): the bureau publishes
agency-months from the console; /results and /results.json show them to anyone, without
signing in, with the statistics' own figures and nothing personal.

Bad inputs tried here: an unpublished month and a malformed month on the public routes (404,
422), publishing a month in the future, an agency without ratings that month (or a made-up
one), a month that is not YYYY-MM, publishing as an agent (403) and without the CSRF token
(403); a rectification after its deadline (not counted as on time).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.access.models import AuditEntry
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock

PHONE = "1381234567"  # + the case's digit
REASON = "窗口人员推诿扯皮"
A, B = "台山市市场监督管理局", "台山市自然资源局"
MONTH = "2026-11"  # the fake clock's month


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


async def bearer(services: Services, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await services.tokens.create(role, role, services.clock())}"}


async def seed(client: TestClient, services: Services, ratings: list[tuple[str, int]]) -> None:
    agent = await bearer(services, "agent")
    for n, (agency, level) in enumerate(ratings):
        service = {
            "case_no": f"C{n}",
            "kind": "complaint",
            "phone": f"{PHONE}{n % 10}",
            "completed_at": "2026-11-20T17:30:00+08:00",
            "agent_id": "A0427",
            **({"agency": agency} if agency else {}),
        }
        response = await client.post("/api/v1/services", json=service, headers=agent)
        assert response.status == 201, await response.text()
        rating = {"case_no": f"C{n}", "level": level, "reason": REASON}
        response = await client.post("/api/v1/ratings", json=rating, headers=agent)
        assert response.status == 201, await response.text()


async def rectify(client: TestClient, services: Services, case_no: str) -> None:
    admin = await bearer(services, "admin")
    response = await client.get("/api/v1/tickets", params={"case_no": case_no}, headers=admin)
    [ticket] = (await response.json())["items"]
    no = ticket["ticket_no"]
    for action, body in (
        ("dispatch", {"agency": ticket["agency"]}),
        ("confirm", {}),
        ("start-rectify", {}),
        ("rectify", {"feedback": "已整改并书面反馈"}),
    ):
        response = await client.post(f"/api/v1/tickets/{no}/{action}", json=body, headers=admin)
        assert response.status == 200, (action, await response.text())


@pytest.mark.article("sanmenxia", 16)
@pytest.mark.article("taishan", 23)
async def test_published_months_are_public_with_the_stats_figures(
    client: TestClient, services: Services
) -> None:
    await seed(client, services, [(A, 1), (A, 2), (A, 4), (A, 5), (B, 5), ("", 4)])
    await rectify(client, services, "C2")  # A's 不满意, in time
    # Nothing is public before the bureau chooses.
    response = await client.get("/results.json")
    assert (response.status, (await response.json())["months"]) == (200, [])
    assert "暂无公布的评价结果" in await (await client.get("/results")).text()

    published = await services_results(client).publish(MONTH, [A], "bureau:王", services.clock())
    assert published == [A]
    response = await client.get("/results.json")
    assert response.status == 200 and "max-age" in response.headers["Cache-Control"]
    body = await response.json()
    [month] = body["months"]
    assert month["month"] == MONTH
    [row] = month["agencies"]
    bureau = await bearer(services, "bureau")
    stats = await client.get(
        "/api/v1/stats",
        params={
            "from": "2026-11-01T00:00:00+08:00",
            "to": "2026-12-01T00:00:00+08:00",
            "group_by": "agency",
        },
        headers=bureau,
    )
    [expected] = [g for g in (await stats.json())["groups"] if g["key"] == A]
    assert row == {
        "agency": A,
        "ratings": expected["count"],
        "satisfaction_rate": expected["satisfaction_rate"],
        "average_score": expected["average_score"],
        "bad_ratings": expected["levels"]["4"] + expected["levels"]["5"],
        "rectified_on_time": 1,
    }
    assert (row["ratings"], row["bad_ratings"], row["satisfaction_rate"]) == (4, 2, 0.5)
    page = await client.get("/results")
    html = await page.text()
    assert page.status == 200 and "2026年11月" in html and A in html and "50.0%" in html
    for answer in (html, await (await client.get("/results.json")).text()):
        assert B not in answer  # not published
        assert PHONE not in answer and "****" not in answer and REASON not in answer
        assert "A0427" not in answer and "C0" not in answer
    # Another month: never published, so not shown; a malformed one is refused.
    response = await client.get("/results.json", params={"month": "2026-10"})
    assert (response.status, (await response.json())["error"]["code"]) == (
        404,
        "month_not_published",
    )
    assert (await client.get("/results", params={"month": "2026-10"})).status == 404
    for bad in ("2026-13", "11/2026", "2026-1", "x" * 300):
        response = await client.get("/results.json", params={"month": bad})
        assert response.status == 422, bad
    # Withdrawn: gone again.
    assert await services_results(client).publish(MONTH, [], "bureau:王", services.clock()) == []
    assert (await (await client.get("/results.json")).json())["months"] == []


def services_results(client: TestClient) -> Any:
    """The console's PublicResults, as the app built it."""
    for resource in client.app.router.resources():
        for route in resource:
            handler = getattr(route.handler, "__self__", None)
            if handler is not None and hasattr(handler, "results"):
                return handler.results
    raise AssertionError("no results pages installed")


@pytest.mark.article("sanmenxia", 16)
@pytest.mark.article("taishan", 23)
async def test_the_bureau_publishes_from_the_console(
    client: TestClient, services: Services
) -> None:
    await seed(client, services, [(A, 1), (B, 3)])
    tokens = {r: await services.tokens.create(r, r, services.clock()) for r in ("agent", "bureau")}

    async def sign_in(role: str) -> str:
        client.session.cookie_jar.clear()
        form = await (await client.get("/console/signin")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        response = await client.post(
            "/console/signin", data={"csrf": csrf[1], "token": tokens[role]}, allow_redirects=False
        )
        assert response.status == 303
        return csrf[1]

    await sign_in("agent")
    assert (await client.get("/console/results")).status == 403
    await sign_in("bureau")
    page = await client.get("/console/results", params={"month": MONTH})
    html = await page.text()
    assert page.status == 200 and A in html and B in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf
    response = await client.post("/console/results", data={"month": MONTH, "agency": A})
    assert response.status == 403  # no CSRF token
    for data, fault in (
        ({"month": "2026-12", "agency": A}, "未来月份"),
        ({"month": MONTH, "agency": "台山市不存在局"}, "没有这些单位的评价"),
        ({"month": "2026/11", "agency": A}, "月份格式"),
    ):
        response = await client.post("/console/results", data={"csrf": csrf[1], **data})
        assert response.status == 422 and fault in await response.text(), data
    assert (await (await client.get("/results.json")).json())["months"] == []
    response = await client.post(
        "/console/results", data={"csrf": csrf[1], "month": MONTH, "agency": A}
    )
    assert response.status == 200 and "已公布 1 个单位" in await response.text()
    [month] = (await (await client.get("/results.json")).json())["months"]
    assert [a["agency"] for a in month["agencies"]] == [A]
    async with services.sessions() as session:
        entries = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.action == "publish_results")
                )
            )
            .scalars()
            .all()
        )
    assert [(e.actor, e.entity_id, e.data["agencies"]) for e in entries] == [
        ("bureau:bureau", MONTH, [A])
    ]


@pytest.fixture
async def sanmenxia(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/smx.db", tmp_path, profile="sanmenxia"
    )
    built = await build_services(settings, migrate=True, clock=clock, state=MemoryState())
    yield built
    await built.close()


@pytest.mark.article("sanmenxia", 16)
@pytest.mark.article("sanmenxia", 15)
async def test_rectified_on_time_counts_only_by_the_deadline(
    aiohttp_client: Any, sanmenxia: Services, clock: FakeClock
) -> None:
    """Sanmenxia: rectify within 15 days (Art. 15); one on day 2, one on day 16."""
    client = await aiohttp_client(build_app(sanmenxia))
    await seed(client, sanmenxia, [(A, 4), (A, 5)])
    await rectify(client, sanmenxia, "C0")
    clock.advance(days=14)
    admin = await bearer(sanmenxia, "admin")
    response = await client.get("/api/v1/tickets", params={"case_no": "C1"}, headers=admin)
    no = (await response.json())["items"][0]["ticket_no"]
    for action, body in (("dispatch", {"agency": A}), ("confirm", {}), ("start-rectify", {})):
        response = await client.post(f"/api/v1/tickets/{no}/{action}", json=body, headers=admin)
        assert response.status == 200, await response.text()
    clock.advance(days=2)  # past the 15 days
    body = {"feedback": "逾期整改"}
    response = await client.post(f"/api/v1/tickets/{no}/rectify", json=body, headers=admin)
    assert response.status == 200, await response.text()
    await services_results(client).publish(MONTH, [A], "bureau:王", clock())
    [month] = (await (await client.get("/results.json")).json())["months"]
    [row] = month["agencies"]
    assert (row["bad_ratings"], row["rectified_on_time"]) == (2, 1)
