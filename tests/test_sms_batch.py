"""Replies handled in batches: one transaction for the batch's facts and one for its answers,
with the same decisions as one reply at a time.

Bad inputs tried here: a reply whose rating fails in the middle of a batch (the others go on;
it stays unhandled and the sweep handles it later, once), two replies of one number in one
batch (decided one after the other: the rating asks for a reason, the next text is that
reason; two help-worthy texts get one help answer), an opted-out number's level in a batch
(rated, not answered), mixed kinds (rating, opt-out, help, reason, opt-in) in one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from pingjia.composition import Services
from rating.ratings.requests import RatingOutcome, RatingRequest
from rating.ratings.service import RatingService
from sms.replies.outcome import InboundResult
from sms.replies.stage1_intake import STALE_CLAIM, Received
from sms.replies.stage2_parse import Parsed, parse
from sms.replies.stage3_facts import FactReader
from sms.replies.stage5_answers import Answers
from sms.storage.models import SmsInbound
from tests.fakes.clock import FakeClock
from tests.sms_support import adopted, messages, register, sent

SENDER = "10690012345"  # the console provider's number; + an evaluation id = its extension


def phone(n: int) -> str:
    return f"1380000{n:04d}"


async def invited(services: Services, clock: FakeClock, count: int) -> list[str]:
    """`count` cases, each of its own number `phone(n)`, invited; their case numbers."""
    cases = [f"C20261120{n:05d}" for n in range(count)]
    for n, case_no in enumerate(cases):
        await register(services, case_no, phone=phone(n))
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == count
    return cases


async def stored(services: Services, sid: str, n: int, body: str, clock: FakeClock) -> Received:
    received = await services.sms.inbox.intake.accept(sid, "+86" + phone(n), "", body, clock())
    assert isinstance(received, Received)
    return received


class Counted:
    """Counts the calls of a coroutine method (one call = one transaction here)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> None:
        self.calls: list[int] = []
        original = getattr(owner, name)

        async def counted(this: Any, batch: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
            self.calls.append(len(batch))
            return await original(this, batch, *args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


async def inbound_rows(services: Services) -> dict[str, SmsInbound]:
    async with services.sessions() as session:
        rows = (await session.execute(select(SmsInbound))).scalars()
        return {r.message_sid: r for r in rows}


async def test_a_batch_shares_one_facts_and_one_answers_transaction(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = await invited(services, clock, 6)
    facts = Counted(monkeypatch, FactReader, "read")
    answers = Counted(monkeypatch, Answers, "store")
    batch = [await stored(services, f"SM{n}", n, "2", clock) for n in range(6)]
    results = await services.sms.inbox.process_many(batch)
    assert [r.outcome for r in results if isinstance(r, InboundResult)] == ["rated"] * 6
    assert [r.case_no for r in results if isinstance(r, InboundResult)] == cases
    assert facts.calls == [6] and answers.calls == [6]
    for case_no in cases:
        rating = await adopted(services, case_no)
        assert rating is not None and rating.level == 2
    confirmations = await messages(services, kind="confirmation")
    assert len(confirmations) == 6 and {m.status for m in confirmations} == {"sent"}
    assert sorted(m.to for m in sent(services) if m.template == "confirmation") == sorted(
        phone(n) for n in range(6)
    )
    rows = await inbound_rows(services)
    assert all(r.outcome == "rated" and r.handled_at == clock() for r in rows.values())


async def test_the_webhooks_replies_are_handled_in_batches(
    services: Services, clock: FakeClock
) -> None:
    cases = await invited(services, clock, 20)
    intake = services.sms.inbox.intake
    before = intake._batches.batches
    batch = await asyncio.gather(*(stored(services, f"SM{n}", n, "1", clock) for n in range(20)))
    for received in batch:
        intake.start(received)
    await intake.drain()
    assert 1 <= intake._batches.batches - before <= 2  # the first alone, the rest together
    for case_no in cases:
        assert await adopted(services, case_no) is not None
    assert len([m for m in sent(services) if m.template == "confirmation"]) == 20


async def test_a_failing_reply_does_not_stop_its_batch(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = await invited(services, clock, 3)
    rate = RatingService.rate

    async def flaky(
        self: RatingService, request: RatingRequest, *, actor: str, now: Any
    ) -> RatingOutcome:
        if request.case_no == cases[1]:
            raise ConnectionError("connection reset")
        return await rate(self, request, actor=actor, now=now)

    batch = [await stored(services, f"SM{n}", n, "1", clock) for n in range(3)]
    with monkeypatch.context() as patched:
        patched.setattr(RatingService, "rate", flaky)
        results = await services.sms.inbox.process_many(batch)
    assert isinstance(results[1], ConnectionError)
    assert [r.outcome for r in results if isinstance(r, InboundResult)] == ["rated", "rated"]
    rows = await inbound_rows(services)
    assert rows["SM1"].handled_at is None and rows["SM0"].handled_at and rows["SM2"].handled_at
    assert await adopted(services, cases[1]) is None
    assert [m.to for m in sent(services) if m.template == "confirmation"] == [phone(0), phone(2)]
    # The sweep takes the failed reply over once its claim is stale, and only that one.
    clock.advance(seconds=STALE_CLAIM.total_seconds() + 1)
    assert await services.sms.inbox.intake.resume_stale(clock()) == 1
    assert await services.sms.inbox.intake.resume_stale(clock()) == 0
    assert await adopted(services, cases[1]) is not None
    assert (await inbound_rows(services))["SM1"].outcome == "rated"
    assert len([m for m in sent(services) if m.template == "confirmation"]) == 3


async def test_two_replies_of_one_number_are_decided_one_after_the_other(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    [case_no, _] = await invited(services, clock, 2)
    facts = Counted(monkeypatch, FactReader, "read")
    batch = [
        await stored(services, "SM1", 0, "不满意", clock),  # a bad rating, no reason yet
        await stored(services, "SM2", 1, "你好", clock),
        await stored(services, "SM3", 0, "等了三个月没人管", clock),  # the reason asked for
        await stored(services, "SM4", 1, "在吗", clock),  # help again the same day: no answer
    ]
    results = await services.sms.inbox.process_many(batch)
    outcomes = [r.outcome for r in results if isinstance(r, InboundResult)]
    assert outcomes == ["asked_reason", "help", "reason_added", "help"]
    assert facts.calls == [2, 2]  # two rounds: one reply of each number in each
    rating = await adopted(services, case_no)
    assert rating is not None and (rating.level, rating.reason) == (4, "等了三个月没人管")
    answers = [(m.to, m.template) for m in sent(services) if m.template != "invitation"]
    assert sorted(answers) == sorted(
        [(phone(0), "ask_reason"), (phone(1), "help"), (phone(0), "confirmation")]
    )


async def test_mixed_kinds_in_one_batch(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = await invited(services, clock, 6)

    async def handle(sid: str, n: int, body: str) -> str:
        result = await services.sms.inbox.handle(sid, "+86" + phone(n), "", body, clock())
        return result.outcome

    # Before the batch: number 3 was asked for a reason; numbers 4 and 5 opted out.
    assert await handle("SMA", 3, "4") == "asked_reason"
    assert await handle("SMB", 4, "TD") == "opted_out"
    assert await handle("SMC", 5, "STOP") == "opted_out"
    answers = Counted(monkeypatch, Answers, "store")
    before = len(sent(services))
    batch = [
        await stored(services, "SM1", 0, "5 态度差", clock),
        await stored(services, "SM2", 1, "退订", clock),
        await stored(services, "SM3", 2, "请问怎么投诉", clock),
        await stored(services, "SM4", 3, "窗口没人", clock),
        await stored(services, "SM5", 4, "1", clock),
        await stored(services, "SM6", 5, "订阅", clock),
    ]
    results = await services.sms.inbox.process_many(batch)
    outcomes = [r.outcome for r in results if isinstance(r, InboundResult)]
    assert outcomes == ["rated", "opted_out", "help", "reason_added", "rated", "opted_in"]
    assert answers.calls == [6]
    answered = {(m.to, m.template) for m in sent(services)[before:]}
    assert answered == {
        (phone(0), "confirmation"),
        (phone(1), "opted_out"),
        (phone(2), "help"),
        (phone(3), "confirmation"),
        (phone(5), "opted_in"),
    }  # number 4 is opted out: its rating counts, it gets no answer
    first = await adopted(services, cases[0])
    assert first is not None and (first.level, first.reason) == (5, "态度差")
    reason = await adopted(services, cases[3])
    assert reason is not None and reason.reason == "窗口没人"
    assert await adopted(services, cases[4]) is not None
    # Number 1 opted out in the batch: a later level is rated but not answered.
    assert await handle("SM7", 1, "2") == "rated"
    assert len(sent(services)) == before + 5


async def test_a_batch_reads_each_numbers_own_target(services: Services, clock: FakeClock) -> None:
    """The newest open invitation of the number; an extension code only for the sender's own
    case."""
    cases = await invited(services, clock, 2)
    clock.advance(minutes=1)
    await register(services, "C-NEWER", phone=phone(0))  # a newer case of number 0
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == 1
    older = await services.ratings.evaluation(cases[0])
    strangers = await services.ratings.evaluation(cases[1])

    async def parsed(sid: str, n: int, to: str) -> Parsed:
        received = await services.sms.inbox.intake.accept(sid, "+86" + phone(n), to, "3", clock())
        assert isinstance(received, Received)
        return parse(services.profile, received)

    batch = [
        await parsed("SMF0", 0, ""),  # the newest invitation to number 0
        await parsed("SMF1", 1, ""),  # number 1's own
        await parsed("SMF2", 0, f"{SENDER}{strangers.id}"),  # names number 1's case: ignored
        await parsed("SMF3", 0, f"{SENDER}{older.id}"),  # names its own older case: that one
    ]
    async with services.sessions() as session:
        facts = await FactReader(services.sms.ctx, session).read(batch)
    targets = [f.target.case_no if f.target else None for f in facts]
    assert targets == ["C-NEWER", cases[1], "C-NEWER", cases[0]]
    assert not any(f.quiet for f in facts)
