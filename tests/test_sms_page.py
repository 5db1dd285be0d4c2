"""The rating-link page /r/{token} over aiohttp's test client, on SQLite and PostgreSQL.

Bad inputs tried here: an unknown token, a token of the wrong shape, a guessing run (429), a
post without the CSRF value, a CSRF value that differs from the cookie, a foreign Origin, no
level, a level out of range, a bad rating without reason or tag, a tag of another level, an
overlong reason, a second submission, an expired link, a case rated on another channel.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services
from rating.ratings.requests import RatingRequest
from tests.fakes.clock import FakeClock
from tests.sms_support import adopted, register, reply, sent
from tests.sms_support import tickets as all_tickets

CASE = "C2026112000001"


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


async def link_path(services: Services, clock: FakeClock) -> str:
    await register(services, CASE)
    clock.advance(minutes=3)
    await services.sms.send_due_invitations(clock())
    return "/r/" + sent(services)[0].params["link"].rsplit("/", 1)[1]


async def open_form(client: TestClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    match = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    assert match is not None
    return match.group(1)


async def test_form_shows_case_levels_and_tags(
    services: Services, clock: FakeClock, client: TestClient
) -> None:
    path = await link_path(services, clock)
    response = await client.get(path)
    html = await response.text()
    assert response.status == 200
    for text in (
        CASE,
        "食品安全投诉",
        "台山市市场监督管理局",
        "非常满意",
        "非常不满意",
        "态度恶劣，故意刁难",
        "主动服务，热情周到",
    ):
        assert text in html
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "pj_csrf" in response.cookies
    assert "SameSite=Strict" in response.headers["Set-Cookie"]


async def test_submit_rates_once_and_opens_a_ticket(
    services: Services, clock: FakeClock, client: TestClient
) -> None:
    path = await link_path(services, clock)
    csrf = await open_form(client, path)
    form = {"csrf": csrf, "level": "5", "tag": "staff_hostile", "reason": "打了三次电话"}
    response = await client.post(path, data=form)
    assert response.status == 200
    assert "感谢您的评价" in await response.text()
    rating = await adopted(services, CASE)
    assert rating is not None
    assert (rating.level, rating.channel, rating.tags, rating.reason) == (
        5,
        "web",
        ["staff_hostile"],
        "打了三次电话",
    )
    assert len(await all_tickets(services)) == 1
    # Single use: the link now says it was used, and a second post changes nothing.
    again = await client.post(path, data=form)
    assert "您已评价" in await again.text()
    assert "您已评价" in await (await client.get(path)).text()
    assert len((await services.ratings.evaluation(CASE)).ratings) == 1


@pytest.mark.article("taishan", 11)
async def test_bad_rating_needs_a_reason(
    services: Services, clock: FakeClock, client: TestClient
) -> None:
    path = await link_path(services, clock)
    csrf = await open_form(client, path)
    # A tag of another level is dropped, which leaves 非常不满意 without a reason.
    response = await client.post(path, data={"csrf": csrf, "level": "5", "tag": "staff_warm"})
    assert response.status == 422
    html = await response.text()
    assert "请至少选择一个原因" in html
    assert re.search(r'value="5"\s+checked', html)  # the choice is kept
    assert (await services.ratings.evaluation(CASE)).status == "pending"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "请先选择满意程度"),
        ({"level": "9"}, "请先选择满意程度"),
        ({"level": "2", "reason": "长" * 501}, "最多500字"),
    ],
)
async def test_bad_forms_keep_nothing(
    services: Services, clock: FakeClock, client: TestClient, form: dict[str, str], message: str
) -> None:
    path = await link_path(services, clock)
    csrf = await open_form(client, path)
    response = await client.post(path, data={"csrf": csrf, **form})
    assert response.status == 422
    assert message in await response.text()
    assert (await services.ratings.evaluation(CASE)).status == "pending"


@pytest.mark.parametrize("fault", ["no_csrf", "other_csrf", "foreign_origin"])
async def test_csrf(services: Services, clock: FakeClock, client: TestClient, fault: str) -> None:
    path = await link_path(services, clock)
    csrf = await open_form(client, path)
    form = {"csrf": csrf, "level": "1"}
    headers = {}
    if fault == "no_csrf":
        del form["csrf"]
    elif fault == "other_csrf":
        form["csrf"] = "forged-value"
    else:
        headers["Origin"] = "https://evil.example"
    response = await client.post(path, data=form, headers=headers)
    assert response.status == 403
    assert (await services.ratings.evaluation(CASE)).status == "pending"


async def test_unknown_tokens_and_guessing(
    services: Services, clock: FakeClock, client: TestClient
) -> None:
    assert (await client.get("/r/AAAAAAAAAAAA")).status == 404
    assert "链接无效" in await (await client.get("/r/bad!token")).text()
    statuses = [(await client.get(f"/r/guess{n:07d}")).status for n in range(10)]
    assert statuses[-1] == 429 and statuses[0] == 404
    assert (await client.get("/r/guess9999999")).headers["Retry-After"] == "600"


async def test_expired_link(services: Services, clock: FakeClock, client: TestClient) -> None:
    path = await link_path(services, clock)
    clock.advance(days=7)
    response = await client.get(path)
    assert response.status == 410
    assert "链接已过期" in await response.text()


async def test_rated_elsewhere(services: Services, clock: FakeClock, client: TestClient) -> None:
    path = await link_path(services, clock)
    csrf = await open_form(client, path)
    await services.ratings.rate(RatingRequest(CASE, 2, "api"), actor="agent", now=clock())
    assert "您已评价" in await (await client.get(path)).text()
    response = await client.post(path, data={"csrf": csrf, "level": "1"})
    assert "您已评价" in await response.text()


async def test_adds_the_reason_an_sms_rating_lacked(
    services: Services, clock: FakeClock, client: TestClient
) -> None:
    path = await link_path(services, clock)
    assert (await reply(services, "5", "SM1")).outcome == "asked_reason"
    html = await (await client.get(path)).text()
    assert re.search(r'value="1"\s+disabled', html)  # the level is fixed: SMS already rated
    csrf = await open_form(client, path)
    response = await client.post(path, data={"csrf": csrf, "tag": "running_around"})
    assert response.status == 200, await response.text()
    rating = await adopted(services, CASE)
    assert rating is not None and (rating.level, rating.tags) == (5, ["running_around"])
    [ticket] = await all_tickets(services)
    assert ticket.tags == ["running_around"]
    assert "您已评价" in await (await client.get(path)).text()
