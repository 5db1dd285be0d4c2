"""Second rating (追评) by SMS, end to end on the console provider, SQLite and PostgreSQL.

A profile with `second_rating = true` (a copy of taishan's, loaded from a path as an operator
would): a 不满意 reply opens a ticket, the ticket walks to closed, the sweep invites the citizen
again, the reply `1` is stored as attempt 2 beside the first rating and posted to the central
store as 评价次数 2. Faults tried: the sweep run twice (one invitation), the invitation due in
quiet hours (held until 08:00), an opted-out number (suppressed), the same reply delivered
twice (one second rating), a second level reply after the second rating ("already rated"), a
newer first-rating invitation to the same number (the level rates that case instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.outbox.models import OutboxItem
from rating.state import MemoryState
from rating.tickets.service import Step
from tests.conftest import _clean_postgres, make_settings
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.sms_support import OTHER_PHONE, PHONE, messages, register, reply, sent

CASE = "C2026112000001"


@pytest.fixture
async def services(database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    text = (resources.files("rating.policy") / "profiles" / "taishan.toml").read_text("utf-8")
    assert "second_rating = false" in text
    profile = tmp_path / "taishan-zhuiping.toml"
    profile.write_text(text.replace("second_rating = false", "second_rating = true"), "utf-8")
    postgres = database_url.startswith("postgresql")
    if postgres:
        await _clean_postgres(database_url)
    settings = make_settings(database_url, tmp_path, profile=str(profile))
    built = await build_services(settings, migrate=not postgres, clock=clock, state=MemoryState())
    yield built
    await built.close()


async def closed_bad_rating(services: Services, clock: FakeClock, case_no: str = CASE) -> None:
    """Invite, reply 4 with a reason, walk the ticket to closed."""
    await register(services, case_no)
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == 1
    result = await reply(services, "4 办事拖拉", f"SM-{case_no}-1")
    assert result.outcome == "rated" and result.ticket_no
    for action, role, step in (
        ("dispatch", "agent", Step()),
        ("confirm", "agency", Step()),
        ("start_rectify", "agency", Step()),
        ("rectify", "agency", Step(feedback="已约谈经办人并整改")),
        ("close", "agent", Step()),
    ):
        await services.tickets.act(
            result.ticket_no, action, step, role=role, actor=role, now=clock()
        )


async def test_closed_ticket_invites_again_and_reply_is_attempt_two(
    services: Services, clock: FakeClock, aiohttp_client: Any
) -> None:
    await closed_bad_rating(services, clock)
    assert await services.sms.send_second_invitations(clock()) == 1
    assert await services.sms.send_second_invitations(clock()) == 0
    invitation = sent(services)[-1]
    assert invitation.template == "second_invitation" and invitation.to == PHONE
    assert CASE in invitation.text and "再次评价" in invitation.text
    clock.advance(hours=2)
    result = await reply(services, "1", "SM-second")
    assert (result.outcome, result.case_no) == ("second_rated", CASE)
    assert sent(services)[-1].template == "confirmation" and "非常满意" in sent(services)[-1].text
    assert (await reply(services, "1", "SM-second")).outcome == "duplicate"
    assert (await reply(services, "2", "SM-third")).outcome == "already_rated"

    client = await aiohttp_client(build_app(services))
    token = await services.tokens.create("agent", "console", clock())
    response = await client.get(
        f"/api/v1/evaluations?case_no={CASE}", headers={"Authorization": f"Bearer {token}"}
    )
    [evaluation] = (await response.json())["items"]
    assert (evaluation["rating"]["level"], evaluation["rating"]["attempt"]) == (4, 1)
    # Beside the first: the 追评 (attempt 2) and the late "2", kept but not applied.
    assert [(r["level"], r["attempt"], r["adopted"]) for r in evaluation["attempts"]] == [
        (1, 2, False),
        (2, 1, False),
    ]

    store = FakeCentralStore()
    await store.start()
    worker = OutboxWorker(services.sessions, CentralStore(store.url), clock)
    try:
        await worker.drain()
    finally:
        await worker.sender.close()  # type: ignore[attr-defined]
        await store.stop()
    ratings = [r.json for r in store.requests if r.path == "/ratings"]
    assert [(p["attempt"], p["satisfaction"]) for p in ratings] == [(1, "不满意"), (2, "非常满意")]
    async with services.sessions() as session:
        rows = (await session.execute(select(OutboxItem).order_by(OutboxItem.id))).scalars()
        second = [r for r in rows if r.topic == "central.rating" and r.payload["attempt"] == 2]
    assert len(second) == 1 and second[0].ordering_key.startswith("evaluation:")


async def test_second_invitation_keeps_quiet_hours_and_opt_out(
    services: Services, clock: FakeClock
) -> None:
    await closed_bad_rating(services, clock)
    tz = services.profile.tz
    night = datetime.combine(clock().astimezone(tz).date(), time(22), tzinfo=tz)
    assert await services.sms.send_second_invitations(night) == 1  # held, not sent
    assert sent(services)[-1].template != "second_invitation"
    [held] = await messages(services, kind="second_invite")
    assert held.status == "held"
    assert await services.sms.release_notices(night + timedelta(hours=1)) == 0
    morning = datetime.combine(night.date() + timedelta(days=1), time(8), tzinfo=tz)
    assert await services.sms.release_notices(morning) == 1
    assert sent(services)[-1].template == "second_invitation"

    clock.now = morning
    await closed_bad_rating(services, clock, "C2")  # same number, a second case
    assert (await reply(services, "TD", "SM-td")).outcome == "opted_out"
    assert await services.sms.send_second_invitations(clock()) == 0
    suppressed = (await messages(services, kind="second_invite"))[-1]
    assert suppressed.status == "suppressed"


async def test_newer_first_invitation_takes_the_level(services: Services, clock: FakeClock) -> None:
    await closed_bad_rating(services, clock)
    assert await services.sms.send_second_invitations(clock()) == 1
    clock.advance(hours=1)
    await register(services, "C3")  # a new case of the same citizen, invited after the 追评
    await register(services, "C4", phone=OTHER_PHONE)
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == 2
    result = await reply(services, "2", "SM-new")
    assert (result.outcome, result.case_no) == ("rated", "C3")
    # Named by its extension code, the 追评 still gets its answer.
    evaluation = await services.ratings.evaluation(CASE)
    result = await reply(services, "3", "SM-ext", to=f"10690012345{evaluation.id}")
    assert (result.outcome, result.case_no) == ("second_rated", CASE)
