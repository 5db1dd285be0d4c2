"""Sending invitations in a pipeline: the next batch claimed while the current one sends.

Bad inputs tried here: a claim that fails after a batch was claimed, a sweep that would claim
forever, two processes (two services, two engines) sweeping the same PostgreSQL database
batch after batch, a Twilio that stalls past the provider's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pingjia.composition import Services, build_services
from rating.state import MemoryState
from sms.claim_ahead import drain
from sms.providers import OutboundSms, ProviderError
from sms.providers.twilio import TwilioProvider
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.fakes.twilio_api import FakeTwilio
from tests.sms_support import SENDER, SID, TOKEN, messages, register, sent


class Batches:
    """Claims from a list of batches and records the order of claims and deliveries."""

    def __init__(self, batches: list[list[int]], fail_at: int | None = None) -> None:
        self.batches = batches
        self.fail_at = fail_at
        self.events: list[str] = []
        self.claims = 0

    async def claim(self) -> list[int]:
        self.claims += 1
        if self.claims == self.fail_at:
            raise RuntimeError("database gone")
        batch = self.batches.pop(0) if self.batches else []
        self.events.append(f"claimed {batch}")
        return batch

    async def deliver(self, batch: Sequence[int]) -> int:
        self.events.append(f"sending {list(batch)}")
        await asyncio.sleep(0.01)
        self.events.append(f"sent {list(batch)}")
        return len(batch)


async def test_next_batch_is_claimed_while_one_sends_never_two_ahead() -> None:
    batches = Batches([[1, 2], [3, 4], [5]])
    assert await drain(batches.claim, batches.deliver, max_batches=10) == 5
    events = batches.events
    # Batch 2 is claimed before batch 1 is sent; batch 3 only after batch 1 is sent.
    assert events.index("claimed [3, 4]") < events.index("sent [1, 2]")
    assert events.index("sent [1, 2]") < events.index("claimed [5]")
    assert events[-1] in ("sent [5]", "sent [3, 4]") and "claimed []" in events


async def test_a_claimed_batch_is_sent_when_the_next_claim_fails() -> None:
    batches = Batches([[1, 2], [3]], fail_at=2)
    with pytest.raises(RuntimeError, match="database gone"):
        await drain(batches.claim, batches.deliver, max_batches=10)
    assert "sent [1, 2]" in batches.events


async def test_a_sweep_claims_at_most_max_batches() -> None:
    batches = Batches([[n] for n in range(10)])
    assert await drain(batches.claim, batches.deliver, max_batches=3) == 3
    assert batches.claims == 3


async def test_invitations_across_batches_each_sent_once(
    services: Services, clock: FakeClock
) -> None:
    services.sms.batch = 3
    for n in range(10):
        await register(services, f"C{n}", phone=f"1380000{n:04d}")
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == 10
    assert await services.sms.send_due_invitations(clock()) == 0
    assert sorted(m.to for m in sent(services)) == [f"1380000{n:04d}" for n in range(10)]
    rows = await messages(services, kind="invitation")
    assert len(rows) == 10 and {r.status for r in rows} == {"sent"}
    assert all(r.provider_sid for r in rows)


@pytest.mark.postgres
async def test_two_processes_sweeping_send_each_invitation_once(
    postgres_url: str, tmp_path: object, clock: FakeClock
) -> None:
    from tests.conftest import _clean_postgres

    await _clean_postgres(postgres_url)
    both = [
        await build_services(
            make_settings(postgres_url, tmp_path), migrate=False, clock=clock, state=MemoryState()
        )
        for _ in range(2)
    ]
    try:
        for service in both:
            service.sms.batch = 4
        for n in range(40):
            await register(both[0], f"C{n}", phone=f"1380000{n:04d}")
        clock.advance(minutes=3)
        counts = await asyncio.gather(
            *(s.sms.send_due_invitations(clock()) for s in both for _ in range(2))
        )
        # A sweep that lost a race (a unique key taken under it) stops; the next one goes on.
        counts += [await s.sms.send_due_invitations(clock()) for s in both]
        assert sum(counts) == 40
        numbers = [m.to for s in both for m in sent(s)]
        assert sorted(numbers) == [f"1380000{n:04d}" for n in range(40)]
    finally:
        for service in both:
            await service.close()


async def test_a_stalled_twilio_is_a_retryable_failure_after_the_timeout() -> None:
    fake = FakeTwilio(latency=2.0)
    await fake.start()
    provider = TwilioProvider(SID, TOKEN, SENDER, "https://x/status", api_url=fake.url, timeout=0.2)
    message = OutboundSms("13812345678", "invitation", {}, "【台山12345】您好", "invitation:1")
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ProviderError) as caught:
            await provider.send(message)
        assert caught.value.retryable
        assert asyncio.get_running_loop().time() - started < 1.5
    finally:
        await provider.close()
        await fake.stop()
