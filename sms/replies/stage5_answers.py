"""Stage 5 of the reply pipeline, answers: stored before they leave, sent now or in the
background.

An answer is a `sms_messages` row under its dedupe key (`reply:<MessageSid>`,
`help:<number>:<day>`), committed as `held` with ANSWER_LEASE in `next_attempt_at`, in the same
transaction as the reply's outcome. Whoever sends it first turns `held` into `sending` by a
compare-and-set: the handler right away (the webhook from a background task, since Twilio needs
only a 2xx), or the `sms_notices` sweep once the lease is over, when the handler's process died
before sending. So an answer leaves once, and is not lost with its process.

Replies are handled in batches (sms/replies/pipeline.py): a batch's answers and outcomes are
one transaction, its answers are taken by one compare-and-set and their outcomes stored by one
executemany, as the sweeps store theirs (`Sender.deliver_all`, sms/sending.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sms.context import SmsContext
from sms.log import log
from sms.replies.outcome import Answer
from sms.replies.stage1_intake import Received
from sms.sending import Sender
from sms.storage.inbox import InboxRepository
from sms.storage.sweeps import MESSAGE_COLUMNS

ANSWER_LEASE = timedelta(minutes=2)

# A handled reply: the reply, its outcome, our answer to it (None: no answer).
Handled = tuple[Received, str, Answer | None]


class Answers:
    """Stores and sends answers; built by the pipeline."""

    def __init__(self, ctx: SmsContext, sender: Sender) -> None:
        self.ctx = ctx
        self.sender = sender
        self._sending: set[asyncio.Task[None]] = set()

    async def store(self, handled: Sequence[Handled]) -> dict[int, str]:
        """Store the answers (held) and the replies' outcomes in one transaction; the answers
        new to send, their number by id (none for a reply without one, or whose key exists)."""
        rows, phones = [], {}
        for received, _, answer in handled:
            if answer is None or answer.key in phones:
                continue
            phones[answer.key] = received.phone
            # Plain values, no ORM object (its instrumentation cost ~0.1 ms per answer); the
            # reply's own hash and ciphertext of the number (stage 1), not computed again.
            row = dict.fromkeys(MESSAGE_COLUMNS)
            row |= self.sender.message_values(
                answer.kind,
                answer.key,
                answer.evaluation_id,
                received.phone_hash,
                received.phone_enc,
                answer.params,
                received.at,
            )
            row["ext_code"], row["status"] = None, "held"
            row["next_attempt_at"] = received.at + ANSWER_LEASE
            rows.append(row)
        async with self.ctx.sessions() as session:
            repo = InboxRepository(session)
            ids = await repo.add_answers(rows)
            await repo.mark_handled([(r.sid, outcome, r.at) for r, outcome, _ in handled])
            await session.commit()
        return {ids[key]: phone for key, phone in phones.items() if key in ids}

    async def send(self, answers: Mapping[int, str], now: datetime, *, background: bool) -> None:
        """Send stored answers (their number by id) now, or from a task `drain` waits for.
        Never raises: an answer not sent stays `held`, and the `sms_notices` sweep sends it
        after the lease."""
        if not background:
            await self._send(answers, now)
            return
        task = asyncio.create_task(self._send(answers, now))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the answers being sent in the background (shutdown, tests, benchmarks)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send(self, answers: Mapping[int, str], now: datetime) -> None:
        """Take the answers held (one compare-and-set for all), send them with the sweeps'
        bounded concurrency, store the outcomes in one executemany (Sender.deliver_all)."""
        try:
            async with self.ctx.sessions() as session:
                rows = await InboxRepository(session).take_held(list(answers))
                await session.commit()
        except Exception as exc:
            log.warning("sms answers left to the notices sweep", error=str(exc)[:200])
            return
        # An answer not taken was taken first by the sweep. The number is the reply's: known,
        # not decrypted again.
        claimed = [self.sender.claimed(row, answers[row.id]) for row in rows]
        try:
            await self.sender.deliver_all(claimed, now)
        except Exception as exc:  # sent, outcome lost: left `sending`, never sent twice
            log.error("sms answers' outcomes not stored", error=str(exc)[:200])
