"""A reply rates the citizen's pending evaluation even before the invitation went out (SPEC
section 4, issue 15 item 8), and the invitation then never goes out.

On SQLite and PostgreSQL with the console provider and a fixed clock (START is 18:00 in
Taishan; the invitation is due 2 minutes after registration).

Bad inputs tried here: text with no level, a level out of range (`6`), an empty body, a level
from another number, an unusable sender, the same reply twice (by MessageSid and by a
provider's dedup key), a level after the case was rated on the call, `TD` before the
invitation (then a level anyway), a second level after the early rating, an extension code
naming another number's case.
"""

from __future__ import annotations

from datetime import timedelta

from pingjia.composition import Services
from ratepage.links import Links, LinkState
from rating.ratings.requests import RatingRequest
from sms.providers import DeliveryReport, InboundReply
from sms.service import as_events
from tests.fakes.clock import FakeClock
from tests.sms_support import OTHER_PHONE, PHONE, adopted, messages, register, reply, sent
from tests.sms_support import tickets as all_tickets


async def sweep_later(services: Services, clock: FakeClock, **delta: int) -> int:
    """Let the clock run on, then run the invitation and reminder sweeps; how many went out."""
    clock.advance(**delta)
    invited = await services.sms.send_due_invitations(clock())
    return invited + await services.sms.send_due_reminders(clock())


async def pending(services: Services, case_no: str) -> bool:
    return (await services.ratings.evaluation(case_no)).status == "pending"


async def test_reply_before_the_invitation_rates_and_the_invitation_never_goes(
    services: Services, clock: FakeClock
) -> None:
    await register(services)
    clock.advance(seconds=30)  # within the 2 minutes' grace: nothing was sent yet
    assert await services.sms.send_due_invitations(clock()) == 0
    result = await reply(services, "５ 态度太差", "SM1")
    assert (result.outcome, result.case_no) == ("rated", "C2026112000001")
    rating = await adopted(services, "C2026112000001")
    assert rating is not None
    assert (rating.level, rating.channel, rating.reason) == (5, "sms", "态度太差")
    [ticket] = await all_tickets(services)
    assert (ticket.level, result.ticket_no) == (5, ticket.ticket_no)
    [confirmation] = sent(services)
    assert confirmation.text == (
        "【台山12345】诉求C2026112000001评价已记录：非常不满意。感谢您的支持！"
    )
    # Neither the invitation nor its reminder goes out afterwards.
    assert await sweep_later(services, clock, minutes=3) == 0
    assert await sweep_later(services, clock, hours=25) == 0
    assert await services.sms.retry_failed(clock()) == 0
    assert [m.template for m in sent(services)] == ["confirmation"]
    assert await messages(services, kind="invitation") == []
    assert await messages(services, kind="reminder") == []


async def test_reply_while_the_invitation_waits_out_quiet_hours(
    services: Services, clock: FakeClock
) -> None:
    clock.advance(hours=3, minutes=30)  # 21:30 in Taishan: the invitation waits for 08:00
    await register(services)
    assert await sweep_later(services, clock, minutes=5) == 0
    result = await reply(services, "1", "SM1")  # answered at once: a reply is not held back
    assert (result.outcome, result.case_no) == ("rated", "C2026112000001")
    assert [m.template for m in sent(services)] == ["confirmation"]
    assert await sweep_later(services, clock, hours=11) == 0  # 08:35: nothing left to invite
    assert [m.template for m in sent(services)] == ["confirmation"]


async def test_early_bad_rating_gets_a_working_link_for_its_reason(
    services: Services, clock: FakeClock
) -> None:
    await register(services)
    clock.advance(seconds=20)
    result = await reply(services, "不满意", "SM1")
    assert result.outcome == "asked_reason"
    [asked] = sent(services)
    assert asked.template == "ask_reason"
    link = asked.params["link"]
    assert link.startswith("http://127.0.0.1:8080/r/") and len(link.rsplit("/", 1)[1]) == 12
    links = Links(services.sessions, services.profile, services.ratings)
    view = await links.view(link.rsplit("/", 1)[1], clock())
    assert view.state is LinkState.ADD_REASON
    assert (await reply(services, "等了三个月没人管", "SM2")).outcome == "reason_added"
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and (rating.level, rating.reason) == (4, "等了三个月没人管")
    assert await sweep_later(services, clock, minutes=3) == 0
    assert [m.template for m in sent(services)] == ["ask_reason", "confirmation"]


async def test_the_latest_pending_evaluation_is_rated_invited_or_not(
    services: Services, clock: FakeClock
) -> None:
    await register(services, "C1")
    assert await sweep_later(services, clock, minutes=3) == 1  # C1 invited
    clock.advance(minutes=5)
    await register(services, "C2")  # registered after C1's invitation; not invited yet
    clock.advance(seconds=30)
    first = await reply(services, "2", "SM1")
    assert (first.outcome, first.case_no) == ("rated", "C2")
    assert "诉求C2评价已记录" in sent(services)[-1].text
    assert await pending(services, "C1")
    # C2 is rated: its invitation never goes; the next level rates C1, still open.
    assert await sweep_later(services, clock, minutes=3) == 0
    second = await reply(services, "3", "SM2")
    assert (second.outcome, second.case_no) == ("rated", "C1")
    assert [m.template for m in sent(services)] == ["invitation", "confirmation", "confirmation"]
    assert [m.evaluation_id for m in await messages(services, kind="invitation")] == [
        (await services.ratings.evaluation("C1")).id
    ]


async def test_an_invitation_newer_than_a_registration_wins(
    services: Services, clock: FakeClock
) -> None:
    # C2 is registered first but its invitation waits (the number's daily cap is the usual
    # reason; here C1 is simply registered and invited later): the newest message wins.
    await register(services, "C2")
    clock.advance(seconds=10)
    await register(services, "C1")
    assert await sweep_later(services, clock, minutes=3) == 2
    clock.advance(minutes=1)
    await register(services, "C3")  # newer than both invitations, not invited
    result = await reply(services, "1", "SM1")
    assert result.case_no == "C3"


async def test_td_before_the_invitation_suppresses_it(services: Services, clock: FakeClock) -> None:
    await register(services)
    clock.advance(seconds=30)
    assert (await reply(services, "TD", "SM1")).outcome == "opted_out"
    assert [m.template for m in sent(services)] == ["opted_out"]
    assert await pending(services, "C2026112000001")  # an opt-out rates nothing
    assert await sweep_later(services, clock, minutes=3) == 0
    [invitation] = await messages(services, kind="invitation")
    assert (invitation.status, invitation.error) == ("suppressed", "number opted out")
    # A level sent anyway is still recorded, and not answered.
    result = await reply(services, "2", "SM2")
    assert (result.outcome, result.case_no) == ("rated", "C2026112000001")
    assert [m.template for m in sent(services)] == ["opted_out"]


async def test_early_replies_that_rate_nothing(services: Services, clock: FakeClock) -> None:
    await register(services)
    clock.advance(seconds=30)
    assert (await reply(services, "你好", "SM1")).outcome == "help"
    assert (await reply(services, "6", "SM2")).outcome == "help"
    assert (await reply(services, "", "SM3")).outcome == "help"
    # Another number's level, and an extension code naming this case from that number.
    assert (await reply(services, "5", "SM4", phone=OTHER_PHONE)).outcome == "help"
    evaluation = await services.ratings.evaluation("C2026112000001")
    named = await reply(services, "5", "SM5", phone=OTHER_PHONE, to=f"10690012345{evaluation.id}")
    assert named.outcome == "help"
    unusable = await services.sms.inbox.handle("SM6", "hello", "", "5", clock())
    assert unusable.outcome == "bad_sender"
    assert await pending(services, "C2026112000001")
    # Nothing was rated, so the invitation still goes, once.
    assert await sweep_later(services, clock, minutes=3) == 1
    assert sent(services)[-1].template == "invitation"


async def test_early_reply_twice_and_a_second_level(services: Services, clock: FakeClock) -> None:
    await register(services)
    clock.advance(seconds=30)
    assert (await reply(services, "2", "SM1")).outcome == "rated"
    assert (await reply(services, "2", "SM1")).outcome == "duplicate"
    again = await reply(services, "5 其实不满意", "SM2")
    assert (again.outcome, again.case_no) == ("already_rated", "C2026112000001")
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and rating.level == 2
    ratings = (await services.ratings.evaluation("C2026112000001")).ratings
    assert sorted((r.level, r.adopted) for r in ratings) == [(2, True), (5, False)]
    assert [m.template for m in sent(services)] == ["confirmation", "already_rated"]
    assert await sweep_later(services, clock, minutes=3) == 0


async def test_rated_on_the_call_then_a_level_by_sms(services: Services, clock: FakeClock) -> None:
    await register(services)
    request = RatingRequest("C2026112000001", 1, "ivr")
    await services.ratings.rate(request, actor="ivr", now=clock())
    clock.advance(seconds=30)
    # Nothing pending, nothing invited: the case registered today is named "already rated".
    result = await reply(services, "5", "SM1")
    assert (result.outcome, result.case_no) == ("already_rated", "C2026112000001")
    assert "已评价，本次回复未计入" in sent(services)[-1].text
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and (rating.level, rating.channel) == (1, "ivr")
    assert await sweep_later(services, clock, minutes=3) == 0
    # Two days on, a level from that number names no case any more.
    clock.advance(days=2)
    assert (await reply(services, "5", "SM2")).outcome == "help"


async def test_a_provider_reply_before_the_invitation_through_sms_events(
    services: Services, clock: FakeClock
) -> None:
    """The service is the SmsEvents providers hand what they hear: a reply stored once per
    dedup key and handled in the background, the extension given apart (Tencent), receipts."""
    events = as_events(services.sms)
    first = await register(services, "C1")
    await register(services, "C2")
    clock.advance(seconds=30)
    # The extension code, given apart from the address, names C1 over the newer C2.
    reply_ = InboundReply("seq-1", "+86" + PHONE, "4 电话一直占线", extension=str(first.id))
    await events.reply(reply_, clock())
    await events.reply(reply_, clock() + timedelta(seconds=5))  # the provider repeats it
    await services.sms.inbox.intake.drain()
    rating = await adopted(services, "C1")
    assert rating is not None and (rating.level, rating.reason) == (4, "电话一直占线")
    assert len((await services.ratings.evaluation("C1")).ratings) == 1
    assert await pending(services, "C2")
    [confirmation] = sent(services)
    assert "诉求C1评价已记录" in confirmation.text
    # An unusable sender is dropped without a row.
    await events.reply(InboundReply("seq-2", "not a number", "5"), clock())
    await services.sms.inbox.intake.drain()
    assert await pending(services, "C2")
    # A delivery report moves the confirmation forward, never back; an unknown id is False.
    [row] = await messages(services, kind="confirmation")
    assert row.provider_sid is not None
    assert await events.delivery(DeliveryReport(row.provider_sid, "delivered"), clock())
    assert await events.delivery(DeliveryReport(row.provider_sid, "sent"), clock())
    assert not await events.delivery(DeliveryReport("nobody", "failed", "E1"), clock())
    [row] = await messages(services, kind="confirmation")
    assert row.status == "delivered"
    # C1 is rated: only C2 is invited.
    assert await sweep_later(services, clock, minutes=3) == 1
    assert sent(services)[-1].params["case_no"] == "C2"
