"""The SMS inbox's intake: replies stored first (together when they arrive together), handled
after, and taken over by the sweep when their handler died.

Bad inputs tried here: a sender that is not a phone number (ignored, nothing stored), the same
MessageSid twice in one batch and again later, a handler that fails after the reply was stored
(the sweep handles it once the claim is stale, not before, and once), a reply whose process
died between storing and handling, a number written inside the reply's text (stored masked).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from pingjia.composition import Services
from sms.replies.outcome import InboundResult
from sms.replies.pipeline import ReplyPipeline
from sms.replies.stage1_intake import STALE_CLAIM, Received
from sms.storage.models import SmsInbound
from tests.fakes.clock import FakeClock
from tests.sms_support import adopted, messages, register, sent


async def invited(services: Services, clock: FakeClock, *case_nos: str) -> None:
    for n, case_no in enumerate(case_nos):
        await register(services, case_no, phone=f"1380000{n:04d}")
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == len(case_nos)


async def stored(services: Services) -> list[SmsInbound]:
    async with services.sessions() as session:
        return list((await session.execute(select(SmsInbound).order_by(SmsInbound.id))).scalars())


async def test_replies_at_once_share_one_insert_and_each_is_handled(
    services: Services, clock: FakeClock
) -> None:
    cases = [f"C20261120{n:05d}" for n in range(12)]
    await invited(services, clock, *cases)
    intake = services.sms.inbox.intake
    before = intake._store.batches
    accepted = await asyncio.gather(
        *(intake.accept(f"SM{n}", f"+861380000{n:04d}", "", "1", clock()) for n in range(12)),
        intake.accept("SM3", "+8613800000003", "", "1", clock()),  # a retry in the same batch
    )
    assert intake._store.batches - before <= 2  # the first alone, the rest together
    assert sum(isinstance(a, Received) for a in accepted) == 12
    assert accepted[-1] == InboundResult("duplicate")
    for received in accepted:
        if isinstance(received, Received):
            intake.start(received)
    await intake.drain()
    for case_no in cases:
        rating = await adopted(services, case_no)
        assert rating is not None and rating.level == 1
    rows = await stored(services)
    assert len(rows) == 12 and all(r.outcome == "rated" and r.handled_at for r in rows)
    assert len(await messages(services, kind="confirmation")) == 12
    again = await intake.accept("SM3", "+8613800000003", "", "1", clock())
    assert again == InboundResult("duplicate")


async def test_a_bad_sender_is_ignored_and_nothing_stored(services: Services) -> None:
    result = await services.sms.inbox.handle("SMX", "hello", "", "5", services.clock())
    assert result == InboundResult("bad_sender")
    assert await stored(services) == []


async def test_a_reply_whose_handler_failed_is_handled_by_the_sweep(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await invited(services, clock, "C2026112000001")
    intake = services.sms.inbox.intake

    async def broken(
        self: ReplyPipeline, batch: list[Received], *, answer_now: bool = True
    ) -> None:
        raise ConnectionError("database restarting")

    with monkeypatch.context() as patched:
        patched.setattr(ReplyPipeline, "process_many", broken)
        received = await intake.accept("SM1", "+8613800000000", "", "5 态度差", clock())
        assert isinstance(received, Received)
        intake.start(received)
        await intake.drain()  # the failure is logged; the reply stays stored and claimed
    [row] = await stored(services)
    assert row.handled_at is None and row.body == "5 态度差" and row.phone_enc
    assert "13800000000" not in row.phone_enc  # encrypted, not in clear
    assert await intake.resume_stale(clock()) == 0  # the claim is still live
    clock.advance(seconds=STALE_CLAIM.total_seconds() + 1)
    assert await intake.resume_stale(clock()) == 1
    assert await intake.resume_stale(clock()) == 0  # handled once
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and (rating.level, rating.reason) == (5, "态度差")
    [row] = await stored(services)
    assert row.outcome == "rated" and row.handled_at is not None
    assert [m.template for m in sent(services)][-1] == "confirmation"


async def test_a_reply_stored_by_a_process_that_died_is_taken_over(
    services: Services, clock: FakeClock
) -> None:
    await invited(services, clock, "C2026112000001")
    # Stored, never started: the process died right after answering Twilio. The number in
    # the text is stored masked; the reply still reads as a level with its reason.
    received = await services.sms.inbox.intake.accept(
        "SM9", "+8613800000000", "", "4 打13812345678没人接", clock()
    )
    assert isinstance(received, Received)
    [row] = await stored(services)
    assert "13812345678" not in row.body
    clock.advance(seconds=STALE_CLAIM.total_seconds() + 1)
    assert await services.sms.inbox.intake.resume_stale(clock()) == 1
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and rating.level == 4
    assert rating.reason is not None and "13812345678" not in rating.reason
    async with services.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(SmsInbound))
    assert count == 1


async def test_queued_replies_are_swept_every_second(services: Services) -> None:
    from pingjia.background import SWEEP_EVERY, sms_sweeps

    def inbox_every() -> object:
        return next(s.every for s in sms_sweeps(services) if s.name == "sms_inbox")

    assert inbox_every() == SWEEP_EVERY  # inline: only replies whose handler died
    services.sms.inbox.intake.queued = True
    assert inbox_every().total_seconds() == 1  # type: ignore[attr-defined]
