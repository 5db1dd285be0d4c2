"""Our answers to citizens' replies: stored before they leave, sent now or in the background.

An answer is a `sms_messages` row under its dedupe key (`reply:<MessageSid>`,
`help:<number>:<day>`), committed as `held` with ANSWER_LEASE in `next_attempt_at`, in the same
transaction as the reply's outcome. Whoever sends it first turns `held` into `sending` by a
compare-and-set: the handler right away (the webhook from a background task, since Twilio needs
only a 2xx), or the `sms_notices` sweep once the lease is over, when the handler's process died
before sending. So an answer leaves once, and is not lost with its process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rating.sms_storage import SmsRepository

if TYPE_CHECKING:
    from sms.service import SmsService

ANSWER_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Answer:
    """Our answer to a reply, sent once per `key`."""

    kind: str
    key: str
    params: dict[str, str] = field(default_factory=dict)
    evaluation_id: int | None = None


class Answers:
    """Stores and sends answers; built by the inbox."""

    def __init__(self, sms: SmsService) -> None:
        self.sms = sms
        self._sending: set[asyncio.Task[None]] = set()

    async def store(
        self, sid: str, outcome: str, answer: Answer | None, phone: str, now: datetime
    ) -> int | None:
        """Store the answer (held) and the reply's outcome in one transaction; the answer's
        message id, or None when there is nothing new to send (no answer, or its key exists)."""
        async with self.sms.sessions() as session:
            repo = SmsRepository(session)
            message_id = None
            if answer is not None:
                vault = self.sms.vault
                row = self.sms._row(
                    answer.kind,
                    answer.key,
                    answer.evaluation_id,
                    vault.lookup_hash(phone),
                    vault.encrypt(phone),
                    answer.params,
                    now,
                )
                row.ext_code = None
                row.status, row.next_attempt_at = "held", now + ANSWER_LEASE
                message_id = await repo.insert_once(row)
            await repo.mark_handled(sid, outcome, now)
            await session.commit()
        return message_id

    async def send(self, message_id: int, now: datetime, *, background: bool) -> None:
        """Send a stored answer now, or from a task `drain` waits for."""
        if not background:
            await self._send(message_id, now)
            return
        task = asyncio.create_task(self._send(message_id, now))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the answers being sent in the background (shutdown, tests, benchmarks)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send(self, message_id: int, now: datetime) -> None:
        async with self.sms.sessions() as session:
            row = await SmsRepository(session).take_held(message_id)
            await session.commit()
        if row is not None:  # else the sweep took it first
            await self.sms._deliver(self.sms.notices._claimed(row), now)
