"""Invitations, reminders, quiet hours, the daily cap, opt-out and replies, on SQLite and
PostgreSQL, with the console provider and a fixed clock (START is 18:00 in Taishan).

Bad inputs tried here: a reply from an unusable sender, the same MessageSid twice, a reply to
nobody's invitation, a reply after the case was rated, a reply naming a case of another number
through the extension code, a bad rating without a reason, two help-worthy replies in one day,
a rating on the call before the invitation is due, a sweep at night, a fourth invitation to
one number in a day, an opted-out number, two sweeps racing.
"""

from __future__ import annotations

import asyncio

from pingjia.composition import Services
from ratepage.links import Links, LinkState
from rating.ratings.requests import RatingRequest
from tests.fakes.clock import FakeClock
from tests.sms_support import OTHER_PHONE, PHONE, adopted, messages, register, reply, sent
from tests.sms_support import tickets as all_tickets


async def invite(services: Services, clock: FakeClock) -> int:
    clock.advance(minutes=3)
    return await services.sms.send_due_invitations(clock())


async def test_invitation_after_grace_once_with_a_working_link(
    services: Services, clock: FakeClock
) -> None:
    await register(services)
    assert await services.sms.send_due_invitations(clock()) == 0  # within the grace
    assert await invite(services, clock) == 1
    assert await invite(services, clock) == 0  # the sweep is idempotent
    [message] = sent(services)
    assert message.to == PHONE
    assert message.text.startswith("【台山12345】12345回访：诉求C2026112000001已办结")
    link = message.params["link"]
    assert link.startswith("http://127.0.0.1:8080/r/")
    links = Links(services.sessions, services.profile, services.ratings)
    view = await links.view(link.rsplit("/", 1)[1], clock())
    assert view.state is LinkState.OPEN
    [row] = await messages(services)
    assert (row.kind, row.status, row.segments) == ("invitation", "sent", 2)
    assert PHONE not in row.phone_enc


async def test_no_invitation_when_rated_on_the_call(services: Services, clock: FakeClock) -> None:
    await register(services)
    await services.ratings.rate(RatingRequest("C2026112000001", 1, "ivr"), actor="ivr", now=clock())
    assert await invite(services, clock) == 0
    assert sent(services) == []


async def test_no_invitation_without_a_phone(services: Services, clock: FakeClock) -> None:
    await register(services, phone=None)
    assert await invite(services, clock) == 0


async def test_night_waits_for_the_morning(services: Services, clock: FakeClock) -> None:
    clock.advance(hours=3, minutes=30)  # 21:30 in Taishan
    await register(services)
    assert await invite(services, clock) == 0
    clock.advance(hours=10)  # 07:33
    assert await services.sms.send_due_invitations(clock()) == 0
    clock.advance(minutes=30)  # 08:03
    assert await services.sms.send_due_invitations(clock()) == 1


async def test_one_reminder_after_the_delay(services: Services, clock: FakeClock) -> None:
    await register(services)
    await invite(services, clock)
    assert await services.sms.send_due_reminders(clock()) == 0
    clock.advance(hours=24)  # 18:03 the next day
    assert await services.sms.send_due_reminders(clock()) == 1
    assert await services.sms.send_due_reminders(clock()) == 0
    assert [m.template for m in sent(services)] == ["invitation", "reminder"]
    assert sent(services)[1].params["link"] == sent(services)[0].params["link"]


async def test_no_reminder_once_rated(services: Services, clock: FakeClock) -> None:
    await register(services)
    await invite(services, clock)
    await reply(services, "1", "SM1")
    clock.advance(hours=24)
    assert await services.sms.send_due_reminders(clock()) == 0


async def test_daily_cap_per_number(services: Services, clock: FakeClock) -> None:
    for n in range(4):
        await register(services, f"C{n}")
    assert await invite(services, clock) == 3  # taishan: daily_cap = 3
    clock.advance(hours=14)  # 08:03 next day
    assert await services.sms.send_due_invitations(clock()) == 1


async def test_rating_reply_with_reason_opens_a_ticket(
    services: Services, clock: FakeClock
) -> None:
    await register(services)
    await invite(services, clock)
    result = await reply(services, "５ 态度太差", "SM1")
    assert (result.outcome, result.case_no) == ("rated", "C2026112000001")
    rating = await adopted(services, "C2026112000001")
    assert rating is not None
    assert (rating.level, rating.channel, rating.reason) == (5, "sms", "态度太差")
    [ticket] = await all_tickets(services)
    assert (ticket.level, ticket.reason, result.ticket_no) == (5, "态度太差", ticket.ticket_no)
    assert (
        sent(services)[-1].text
        == "【台山12345】诉求C2026112000001评价已记录：非常不满意。感谢您的支持！"
    )


async def test_same_message_sid_twice_changes_nothing(services: Services, clock: FakeClock) -> None:
    await register(services)
    await invite(services, clock)
    first, second = await asyncio.gather(reply(services, "2", "SM1"), reply(services, "2", "SM1"))
    assert sorted([first.outcome, second.outcome]) == ["duplicate", "rated"]
    assert (await reply(services, "2", "SM1")).outcome == "duplicate"
    evaluation = await services.ratings.evaluation("C2026112000001")
    assert len(evaluation.ratings) == 1
    assert len(sent(services)) == 2  # the invitation and one confirmation


async def test_reply_after_rating_is_already_rated(services: Services, clock: FakeClock) -> None:
    await register(services)
    await invite(services, clock)
    await reply(services, "1", "SM1")
    result = await reply(services, "5 其实不满意", "SM2")
    assert result.outcome == "already_rated"
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and rating.level == 1
    assert "已评价，本次回复未计入" in sent(services)[-1].text


async def test_bad_rating_without_reason_asks_for_one(services: Services, clock: FakeClock) -> None:
    await register(services)
    await invite(services, clock)
    result = await reply(services, "不满意", "SM1")
    assert result.outcome == "asked_reason"
    asked = sent(services)[-1]
    assert asked.template == "ask_reason"
    assert asked.params["link"] == sent(services)[0].params["link"]
    assert (await reply(services, "等了三个月没人管", "SM2")).outcome == "reason_added"
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and (rating.level, rating.reason) == (4, "等了三个月没人管")
    [ticket] = await all_tickets(services)
    assert ticket.reason == "等了三个月没人管"
    assert sent(services)[-1].template == "confirmation"
    # The reason is taken once; more text afterwards gets the help answer.
    assert (await reply(services, "还有一件事", "SM3")).outcome == "help"


async def test_help_at_most_once_a_day(services: Services, clock: FakeClock) -> None:
    await register(services)
    await invite(services, clock)
    assert (await reply(services, "你好", "SM1")).outcome == "help"
    assert (await reply(services, "在吗", "SM2")).outcome == "help"
    assert [m.template for m in sent(services)] == ["invitation", "help"]
    clock.advance(days=1)
    await reply(services, "在吗", "SM3")
    assert [m.template for m in sent(services)][-1] == "help"
    assert len(sent(services)) == 3


async def test_reply_from_a_stranger_gets_help(services: Services, clock: FakeClock) -> None:
    assert (await reply(services, "5", "SM1", phone=OTHER_PHONE)).outcome == "help"
    assert (await services.sms.inbox.handle("SM2", "hello", "", "5", clock())).outcome == (
        "bad_sender"
    )


async def test_latest_invitation_or_extension_code(services: Services, clock: FakeClock) -> None:
    first = await register(services, "C1")
    await invite(services, clock)
    clock.advance(minutes=5)
    await register(services, "C2")
    await invite(services, clock)
    # No extension: the newest open invitation, named in the confirmation.
    assert (await reply(services, "2", "SM1")).case_no == "C2"
    assert "诉求C2评价已记录" in sent(services)[-1].text
    # The extension code (our number + the evaluation id) picks the first case.
    result = await reply(services, "3", "SM2", to=f"10690012345{first.id}")
    assert result.case_no == "C1"
    # Another number cannot rate a case through its extension code.
    other = await reply(services, "5", "SM3", phone=OTHER_PHONE, to=f"10690012345{first.id}")
    assert other.outcome == "help"


async def test_opt_out_stops_everything_and_opt_in_restores(
    services: Services, clock: FakeClock
) -> None:
    await register(services, "C1")
    await invite(services, clock)
    assert (await reply(services, "TD", "SM1")).outcome == "opted_out"
    assert sent(services)[-1].template == "opted_out"
    count = len(sent(services))
    clock.advance(hours=24)
    assert await services.sms.send_due_reminders(clock()) == 0
    await register(services, "C2")
    assert await invite(services, clock) == 0
    [suppressed] = await messages(
        services, dedupe_key=f"invitation:{(await services.ratings.evaluation('C2')).id}"
    )
    assert suppressed.status == "suppressed"
    # A rating from an opted-out number still counts, silently.
    assert (await reply(services, "1", "SM2")).outcome == "rated"
    assert len(sent(services)) == count
    assert (await reply(services, "订阅", "SM3")).outcome == "opted_in"
    assert sent(services)[-1].template == "opted_in"
    await register(services, "C3")
    assert await invite(services, clock) == 1


async def test_racing_sweeps_send_each_invitation_once(
    services: Services, clock: FakeClock
) -> None:
    for n in range(20):
        await register(services, f"C{n}", phone=f"1380000{n:04d}")
    clock.advance(minutes=3)
    counts = await asyncio.gather(*(services.sms.send_due_invitations(clock()) for _ in range(4)))
    assert sum(counts) == 20
    assert len(sent(services)) == 20


async def test_migration_0003_matches_the_models(tmp_path: object) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from rating.db import engine as db
    from rating.db.base import Base

    url = f"sqlite+aiosqlite:///{tmp_path}/schema.db"
    await db.upgrade(url)
    engine = db.create_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    await engine.dispose()
    ours = ("sms_messages", "sms_opt_outs", "sms_inbound", "rating_links")
    assert [d for d in diff if any(t in repr(d) for t in ours)] == []


async def test_retry_skipped_once_rated(services: Services, clock: FakeClock) -> None:
    from sqlalchemy import update

    from sms.storage.models import SmsMessage

    await register(services)
    await invite(services, clock)
    async with services.sessions() as session:  # as a failed delivery receipt leaves it
        await session.execute(update(SmsMessage).values(status="failed", next_attempt_at=clock()))
        await session.commit()
    await reply(services, "1", "SM1")
    clock.advance(minutes=31)
    assert await services.sms.retry_failed(clock()) == 0
    [invitation] = await messages(services, kind="invitation")
    assert (invitation.attempts, invitation.next_attempt_at) == (1, None)
