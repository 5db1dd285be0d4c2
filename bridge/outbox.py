"""The outbox worker: posts what the domain wrote to the outbox, until acknowledged.

Each item keeps its `Idempotency-Key` on every try, so the store can drop a repeat. Items of
one ordering key (one evaluation) go out one at a time, in order: the claim query only hands
out the oldest waiting item of each key. A failed try waits an exponential, jittered delay; after
`max_attempts` the item is dead-lettered (kept, marked, and raised as a console alert) and no
longer holds up the items behind it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.backoff import Backoff
from rating.outbox.models import OutboxItem
from rating.outbox.repository import OutboxRepository

log = structlog.get_logger("pingjia.outbox")


class Sender(Protocol):
    topics: tuple[str, ...]

    async def send(self, topic: str, key: str, payload: dict[str, Any]) -> None: ...


class DeadLetter(Protocol):
    async def __call__(
        self, *, item_id: int, topic: str, key: str, attempts: int, error: str, now: datetime
    ) -> None: ...


@dataclass
class Tally:
    """What one run did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.dead


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class OutboxWorker:
    """Claims due outbox items and posts them with bounded concurrency."""

    sessions: async_sessionmaker[AsyncSession]
    sender: Sender
    clock: Callable[[], datetime]
    dead_letter: DeadLetter | None = None
    backoff: Backoff = field(default_factory=Backoff)
    max_attempts: int = 8
    concurrency: int = 64
    batch: int = 500
    lease: timedelta = timedelta(seconds=120)

    async def run_once(self, now: datetime | None = None) -> Tally:
        """Claim one batch of due items, post them, record each outcome."""
        start = now or self.clock()
        async with self.sessions() as session:
            items = await OutboxRepository(session).claim(
                self.sender.topics, start, start + self.lease, self.batch
            )
            await session.commit()
        tally = Tally()
        if not items:
            return tally
        gate = asyncio.Semaphore(self.concurrency)
        outcomes = await asyncio.gather(*(self._post(gate, item) for item in items))
        await self._record(items, outcomes, tally)
        return tally

    async def drain(self, now: datetime | None = None, max_rounds: int = 1000) -> Tally:
        """Run batches until nothing is due (items behind an acknowledged head become due)."""
        total = Tally()
        for _ in range(max_rounds):
            tally = await self.run_once(now)
            total.sent += tally.sent
            total.retried += tally.retried
            total.dead += tally.dead
            if tally.handled == 0:
                break
        return total

    async def _post(self, gate: asyncio.Semaphore, item: OutboxItem) -> str | None:
        """None when acknowledged, else the error."""
        async with gate:
            try:
                await self.sender.send(item.topic, item.idempotency_key, item.payload)
            except Exception as exc:  # every failure is a retry; the message is kept
                return str(exc) or type(exc).__name__
        return None

    async def _record(
        self, items: Sequence[OutboxItem], outcomes: Sequence[str | None], tally: Tally
    ) -> None:
        now = self.clock()
        buried: list[tuple[OutboxItem, int, str]] = []
        async with self.sessions() as session:
            repo = OutboxRepository(session)
            acked = [item.id for item, error in zip(items, outcomes, strict=True) if error is None]
            await repo.acknowledge(acked, now)
            tally.sent += len(acked)
            for item, error in zip(items, outcomes, strict=True):
                attempts = item.attempts + 1
                if error is None:
                    continue
                if attempts >= self.max_attempts:
                    await repo.bury(item.id, attempts, now, error)
                    buried.append((item, attempts, error))
                    tally.dead += 1
                else:
                    await repo.retry_later(
                        item.id, attempts, now + self.backoff.delay(attempts), error
                    )
                    log.warning(
                        "outbox post failed", key=item.idempotency_key, tries=attempts, error=error
                    )
                    tally.retried += 1
            await session.commit()
        for item, attempts, error in buried:
            if self.dead_letter is not None:
                await self.dead_letter(
                    item_id=item.id,
                    topic=item.topic,
                    key=item.idempotency_key,
                    attempts=attempts,
                    error=error,
                    now=now,
                )
