"""Answers to replies sent from the background, and answers whose sender died before sending.

Bad inputs tried here: a reply whose handler's process dies between storing its answer and
sending it (the notices sweep sends it once the lease is over, once, and not before), the same
for an opt-out's own confirmation (which goes to an opted-out number, on purpose), a sweep
racing the background sender, and the same MessageSid while its answer is still in flight.
"""

from __future__ import annotations

import pytest

from pingjia.composition import Services
from sms.replies.stage5_answers import ANSWER_LEASE, Answers
from tests.fakes.clock import FakeClock
from tests.sms_support import PHONE, adopted, messages, register, sent


async def invited(services: Services, clock: FakeClock) -> None:
    await register(services)
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == 1


async def handle_later(services: Services, body: str, sid: str, clock: FakeClock) -> str:
    result = await services.sms.inbox.handle(
        sid, "+86" + PHONE, "", body, clock(), answer_now=False
    )
    return result.outcome


async def test_background_answer_goes_out_once(services: Services, clock: FakeClock) -> None:
    await invited(services, clock)
    assert await handle_later(services, "1", "SM1", clock) == "rated"
    assert await handle_later(services, "1", "SM1", clock) == "duplicate"
    await services.sms.inbox.intake.drain()
    assert [m.template for m in sent(services)] == ["invitation", "confirmation"]
    [answer] = await messages(services, kind="confirmation")
    assert answer.status == "sent" and answer.next_attempt_at is None
    # The sweep finds nothing held: the background sender took it.
    clock.advance(minutes=4)
    assert await services.sms.release_notices(clock()) == 0
    assert len(sent(services)) == 2


@pytest.mark.parametrize(
    ("body", "kind", "text"), [("1", "confirmation", "非常满意"), ("TD", "opted_out", "退订")]
)
async def test_answer_of_a_dead_handler_is_sent_by_the_sweep(
    services: Services,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    kind: str,
    text: str,
) -> None:
    await invited(services, clock)

    async def died(self: Answers, message_id: int, now: object, *, background: bool) -> None:
        return None  # the process ended after the commit, before sending

    monkeypatch.setattr(Answers, "send", died)
    await handle_later(services, body, "SM2", clock)
    [answer] = await messages(services, kind=kind)
    assert answer.status == "held"
    assert await services.sms.release_notices(clock()) == 0  # the handler's lease still runs
    clock.advance(minutes=ANSWER_LEASE.total_seconds() // 60)
    assert await services.sms.release_notices(clock()) == 1
    assert await services.sms.release_notices(clock()) == 0
    assert text in sent(services)[-1].text
    assert len(sent(services)) == 2
    if body == "1":
        assert (await adopted(services, "C2026112000001")) is not None
