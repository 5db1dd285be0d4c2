"""What the two cities' regulations ask of the software, each in both profiles where both
regulations have it (issue 17, item 6). Each test carries the articles it proves; see
docs/regulations.md for the article-by-article map.

Bad inputs tried here: a staff rating over a citizen's adopted one (409), a bad rating with
neither tag nor reason (422 in Taishan, accepted in Sanmenxia, whose text asks for none), not
adopting without evidence (422), not adopting a rating about the matter in Taishan (409),
rectifying without the written feedback (422), a default sweep before the seventh day.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.cases.registration import ServiceRecord
from rating.outbox.models import OutboxItem
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from rating.tickets.models import Ticket
from scheduler.sweeps import DefaultRatings
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.sms_support import sent

PHONE = "13812345678"
AGENCY = "市场监督管理局"
article = pytest.mark.article


def both(sanmenxia: int | None, taishan: int | None) -> Callable[[Any], Any]:
    """Run a test in both cities' profiles, each run marked with its own city's article."""
    params = [
        pytest.param(city, marks=[article(city, number)] if number else [], id=city)
        for city, number in (("sanmenxia", sanmenxia), ("taishan", taishan))
    ]
    return pytest.mark.parametrize("city", params, indirect=True)


@pytest.fixture
async def city(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Services]:
    """The service on SQLite with the profile of the city the test is parametrized with."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/pingjia.db", tmp_path, profile=request.param
    )
    built = await build_services(settings, migrate=True, clock=clock, state=MemoryState())
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def client(aiohttp_client: Any, city: Services) -> TestClient:
    return await aiohttp_client(build_app(city))  # type: ignore[no-any-return]


async def bearer(services: Services, role: str) -> dict[str, str]:
    token = await services.tokens.create(role, f"{role}-1", services.clock())
    return {"Authorization": f"Bearer {token}"}


async def register(client: TestClient, headers: dict[str, str], case_no: str) -> None:
    service = {
        "case_no": case_no,
        "kind": "complaint",
        "phone": PHONE,
        "completed_at": "2026-11-20T17:30:00+08:00",
        "agency": AGENCY,
    }
    response = await client.post("/api/v1/services", json=service, headers=headers)
    assert response.status == 201, await response.text()


async def rate(
    client: TestClient, headers: dict[str, str], case_no: str, level: int, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body = {"case_no": case_no, "level": level, **extra}
    response = await client.post("/api/v1/ratings", json=body, headers=headers)
    return response.status, await response.json()


def staff_tag(services: Services, level: int) -> str:
    return next(t.code for t in services.profile.tags[level] if t.kind == "staff")


def matter_tag(services: Services, level: int) -> str:
    return next(t.code for t in services.profile.tags[level] if t.kind == "matter")


@both(sanmenxia=4, taishan=4)
async def test_rating_is_voluntary_and_staff_cannot_change_it(
    city: Services, client: TestClient
) -> None:
    """公正/自愿, 不得强迫或干扰: nothing rates for the citizen before the default is due,
    a later rating cannot replace the adopted one, and a level scores the same on every
    channel (Taishan: 统一服务标准和评价标准)."""
    agent = await bearer(city, "agent")
    await register(client, agent, "C-1")
    response = await client.get("/api/v1/evaluations", params={"case_no": "C-1"}, headers=agent)
    [pending] = (await response.json())["items"]
    assert (pending["status"], pending["rating"]) == ("pending", None)
    status, first = await rate(client, agent, "C-1", 2, channel="api")
    assert status == 201, first
    status, answer = await rate(client, agent, "C-1", 1, channel="api")
    assert status == 409, answer
    response = await client.get("/api/v1/evaluations", params={"case_no": "C-1"}, headers=agent)
    [rated] = (await response.json())["items"]
    assert rated["rating"]["level"] == 2 and rated["rating"]["adopted"] is True
    # The same level means the same label and score whichever channel took it.
    scores = set()
    for n, channel in enumerate(("ivr", "sms", "web", "api")):
        await register(client, agent, f"C-ch{n}")
        outcome = await city.ratings.rate(
            RatingRequest(f"C-ch{n}", 2, channel), actor="t", now=city.clock()
        )
        evaluation = await city.ratings.evaluation(f"C-ch{n}")
        [rating] = evaluation.ratings
        assert rating.channel == channel, outcome
        scores.add((rating.level, rating.score))
    assert scores == {(2, city.profile.score(2))}


@both(sanmenxia=8, taishan=15)
async def test_the_hotline_asks_by_sms_and_links_to_the_detailed_rating(
    city: Services, client: TestClient, clock: FakeClock
) -> None:
    """短信评价 … 引导评价主体到网上 … 进行详细评价 (Sanmenxia); 通过语音或短信等提示引导
    评价人 … 进行评价 (Taishan): the invitation carries a link to a page with every level and
    the reason tags."""
    await city.ratings.register(
        ServiceRecord(
            case_no="C-sms",
            kind="consultation",
            phone=PHONE,
            completed_at=clock(),
            agency=AGENCY,
            matter=None,
        ),
        actor="test",
        now=clock(),
    )
    clock.advance(minutes=30)
    assert await city.sms.send_due_invitations(clock()) == 1
    [message] = sent(city)
    assert message.to == PHONE and "C-sms" in message.text
    link = message.params["link"]
    assert "/r/" in link and link in message.text
    page = await client.get("/r/" + link.rsplit("/r/", 1)[1])
    html = await page.text()
    assert page.status == 200, html
    for level in range(1, 6):
        assert city.profile.label(level) in html
    for tag in city.profile.tags[4]:
        assert tag.text in html


@both(sanmenxia=10, taishan=16)
async def test_the_raters_number_never_leaves_in_clear(city: Services, client: TestClient) -> None:
    """实名制 … 未经同意不得将评价主体信息提供给任何第三方: what goes to the central store and
    to the 12345 ticket carries no phone number, and staff see it masked."""
    agent = await bearer(city, "agent")
    await register(client, agent, "C-p")
    status, answer = await rate(client, agent, "C-p", 5, reason="态度很差")
    assert status == 201, answer
    assert not city.profile.central_store.send_phone_in_clear
    async with city.sessions() as session:
        payloads = (await session.execute(select(OutboxItem.payload))).scalars().all()
    assert payloads, "the rating and its ticket go to the central store"
    for payload in payloads:
        # At most the masked form (138****5678) that pages show too.
        assert PHONE not in str(payload) and "12345678" not in str(payload), payload
    response = await client.get("/api/v1/evaluations", params={"case_no": "C-p"}, headers=agent)
    [evaluation] = (await response.json())["items"]
    assert evaluation["phone"] == "138****5678"
    response = await client.get("/api/v1/tickets", params={"case_no": "C-p"}, headers=agent)
    assert PHONE not in await response.text()


@both(sanmenxia=12, taishan=17)
async def test_five_levels_and_the_default_after_seven_days(city: Services) -> None:
    """Five levels; unrated 7 days after the service: 基本满意 (Sanmenxia Art. 12) or
    非常满意 (Taishan Art. 17, 7 natural days)."""
    labels = [city.profile.label(n) for n in range(1, 6)]
    assert labels == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    done = city.clock()
    await city.ratings.register(
        ServiceRecord(
            case_no="C-d", kind="complaint", phone=PHONE, completed_at=done, agency=AGENCY
        ),
        actor="test",
        now=done,
    )
    sweep = DefaultRatings(city.sessions, city.ratings, owner="me")
    assert await sweep(done + timedelta(days=7) - timedelta(minutes=1)) == 0
    assert await sweep(done + timedelta(days=7)) == 1
    evaluation = await city.ratings.evaluation("C-d")
    [rating] = evaluation.ratings
    expected = {"sanmenxia": "基本满意", "taishan": "非常满意"}[city.profile.name]
    assert (evaluation.status, city.profile.label(rating.level)) == ("defaulted", expected)
    assert rating.channel == "system"


@both(sanmenxia=14, taishan=21)
async def test_a_bad_rating_opens_a_ticket_with_the_citys_deadlines(
    city: Services, client: TestClient
) -> None:
    """不满意/非常不满意 → a ticket for 12345 to transfer (转办), born with the rating, with
    the city's deadlines: verify in 24 h and rectify in 15 days (Sanmenxia Art. 15), call back
    and verify in 10 working days (Taishan Art. 21)."""
    agent = await bearer(city, "agent")
    for level in (3, 4, 5):
        await register(client, agent, f"C-{level}")
        status, answer = await rate(client, agent, f"C-{level}", level, reason="没有解决")
        assert status == 201, answer
        assert (answer.get("ticket") is not None) == (level >= 4)
    response = await client.get("/api/v1/tickets", params={"case_no": "C-5"}, headers=agent)
    [ticket] = (await response.json())["items"]
    assert ticket["status"] == "new" and ticket["level"] == 5
    rated = datetime.fromisoformat(answer["evaluation"]["rating"]["rated_at"])
    due = {name: datetime.fromisoformat(at) for name, at in ticket["deadlines"].items()}
    if city.profile.name == "sanmenxia":
        assert set(due) == {"verify", "rectify"}
        assert due["verify"] - rated == timedelta(hours=24)
        assert due["rectify"] - rated == timedelta(days=15)
    else:
        # Friday 2026-11-20 17:30 local + 10 working days: Friday 2026-12-04.
        assert set(due) == {"callback"}
        assert due["callback"].date().isoformat() == "2026-12-04"
    # Queued for the 12345 system in the rating's own transaction (the bridge carries it).
    async with city.sessions() as session:
        queued = (await session.execute(select(Ticket.transfer_next_at))).scalars().all()
    assert len(queued) == 2 and all(at is not None for at in queued)


@both(sanmenxia=15, taishan=22)
async def test_false_ratings_are_not_adopted_only_on_evidence(
    city: Services, client: TestClient
) -> None:
    """误评或恶意差评不予采纳 (Sanmenxia Art. 15, any bad rating); only ratings of staff can be
    appealed, with evidence (Taishan Art. 22); a confirmed one is rectified with written
    feedback (Sanmenxia: 整改情况书面反馈)."""
    agent_h, bureau_h, admin_h = [await bearer(city, r) for r in ("agent", "bureau", "admin")]
    numbers = {}
    for name, tag in (("staff", staff_tag(city, 4)), ("matter", matter_tag(city, 4))):
        await register(client, agent_h, f"C-{name}")
        status, answer = await rate(client, agent_h, f"C-{name}", 4, tags=[tag])
        assert status == 201, answer
        numbers[name] = answer["ticket"]["ticket_no"]

    async def step(no: str, action: str, body: dict[str, Any], who: dict[str, str]) -> Any:
        response = await client.post(f"/api/v1/tickets/{no}/{action}", json=body, headers=who)
        return response.status, await response.json()

    for no in numbers.values():
        assert (await step(no, "dispatch", {"agency": AGENCY}, agent_h))[0] == 200
    status, answer = await step(numbers["staff"], "not-adopt", {}, bureau_h)
    assert status == 422, answer
    evidence = {"evidence": "通话录音显示为误评"}
    status, answer = await step(numbers["staff"], "not-adopt", evidence, bureau_h)
    assert (status, answer["verdict"]) == (200, "not_adopted"), answer
    status, answer = await step(numbers["matter"], "not-adopt", evidence, bureau_h)
    if city.profile.name == "taishan":
        assert (status, answer["error"]["code"]) == (409, "not_appealable")
    else:
        assert (status, answer["verdict"]) == (200, "not_adopted")
    # A confirmed bad rating is rectified only with the written feedback.
    await register(client, agent_h, "C-real")
    status, answer = await rate(client, agent_h, "C-real", 5, tags=[staff_tag(city, 5)])
    no = answer["ticket"]["ticket_no"]
    await step(no, "dispatch", {"agency": AGENCY}, agent_h)
    assert (await step(no, "confirm", {}, admin_h))[0] == 200
    assert (await step(no, "start-rectify", {}, admin_h))[0] == 200
    status, answer = await step(no, "rectify", {}, admin_h)
    assert status == 422, answer
    status, answer = await step(no, "rectify", {"feedback": "已约谈整改，书面反馈"}, admin_h)
    assert (status, answer["status"], answer["feedback"]) == (
        200,
        "rectified",
        "已约谈整改，书面反馈",
    )


@both(sanmenxia=19, taishan=25)
async def test_what_the_rater_said_about_staff_reaches_the_bureau_whole(
    city: Services, client: TestClient
) -> None:
    """涉嫌违纪、违法的线索，转有关部门 (Sanmenxia) / 按照有关规定处理 (Taishan): pingjia cannot
    refer anyone to the discipline authorities; it keeps the rater's own words and tags on the
    ticket, whole, for the bureau that makes the referral."""
    agent, bureau = await bearer(city, "agent"), await bearer(city, "bureau")
    words = "窗口工作人员索要好处费，不给就不办理。"
    await register(client, agent, "C-x")
    status, answer = await rate(client, agent, "C-x", 5, tags=[staff_tag(city, 5)], reason=words)
    assert status == 201, answer
    response = await client.get("/api/v1/tickets", params={"case_no": "C-x"}, headers=bureau)
    [ticket] = (await response.json())["items"]
    assert ticket["reason"] == words
    assert ticket["tags"] == [staff_tag(city, 5)]


@both(sanmenxia=None, taishan=11)
async def test_a_bad_rating_needs_a_tag_or_a_reason_in_taishan(
    city: Services, client: TestClient
) -> None:
    """应当选择对应的评价标签或输入不满意原因 (Taishan Art. 11); Sanmenxia asks for none."""
    agent = await bearer(city, "agent")
    for n, (level, extra) in enumerate(
        [(4, {}), (5, {}), (4, {"reason": "办事效率低"}), (5, {"tags": [staff_tag(city, 5)]})]
    ):
        await register(client, agent, f"C-{n}")
        status, answer = await rate(client, agent, f"C-{n}", level, **extra)
        needs = city.profile.name == "taishan" and not extra
        assert status == (422 if needs else 201), (level, extra, answer)
    status, answer = await rate(client, agent, "C-0", 1)  # nothing was written for C-0
    assert status == (201 if city.profile.name == "taishan" else 409), answer
