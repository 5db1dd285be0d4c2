"""The reply pipeline: a citizen's reply through its stages, in order.

1. intake (`stage1_intake`): stored once per dedup key (MessageSid, sequence id, …) and claimed,
   before anything else; the `sms_inbox` sweep takes over replies whose handler died;
2. parse (`stage2_parse`): opt-out, opt-in, a level with its reason, or other text;
3. facts (`stage3_facts`): what the decisions need, read for the whole batch at once;
4. decide (`stage4_decide`): the rating, the reason, the 追评, the opt-out's confirmation, help;
5. answers (`stage5_answers`): our answers stored `held` with the replies' outcomes, then sent.

Everything after the claim is idempotent (the rating by `source_ref`, each answer by its
dedupe key), so a reply whose first handling died half-way can be handled again safely.

Replies are handled in batches (`process_many`; one reply is a batch of one), a round of
statements per batch instead of per reply: one transaction reads what the decisions need,
the ratings share the domain's group commit, one transaction stores every answer (`held`)
with every reply's outcome, one statement takes the answers to send. A batch holds one reply
per number: a second reply from the same number goes into the next round, so it is decided
after the first, as if they had come one by one. A reply that fails is left unhandled (the
`sms_inbox` sweep retries it); the others of its batch go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from rating.privacy import mask_phone
from sms.context import SmsContext
from sms.log import log, logs_info
from sms.replies.outcome import InboundResult
from sms.replies.stage1_intake import Intake, Received
from sms.replies.stage2_parse import Parsed, parse
from sms.replies.stage3_facts import FactReader
from sms.replies.stage4_decide import Decider
from sms.replies.stage5_answers import Answers
from sms.sending import Sender


class ReplyPipeline:
    """Runs stored replies through the stages; built by SmsService (its `inbox`)."""

    def __init__(self, ctx: SmsContext, sender: Sender) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.decider = Decider(ctx)
        self.answers = Answers(ctx, sender)
        self.intake = Intake(ctx, self._handle_batch, self.answers.drain)

    async def handle(
        self,
        message_sid: str,
        sender: str,
        to: str,
        body: str,
        now: datetime,
        *,
        answer_now: bool = True,
    ) -> InboundResult:
        """Store and handle one reply, waiting for both; the same MessageSid again changes
        nothing. (A provider's callback stores, answers, and handles in the background.)"""
        received = await self.intake.accept(message_sid, sender, to, body, now)
        if not isinstance(received, Received):
            return received
        return await self.process(received, answer_now=answer_now)

    async def process(self, received: Received, *, answer_now: bool = True) -> InboundResult:
        """Handle one stored reply: a batch of one; its error is raised."""
        [result] = await self.process_many([received], answer_now=answer_now)
        if isinstance(result, Exception):
            raise result
        return result

    async def process_many(
        self, batch: Sequence[Received], *, answer_now: bool = True
    ) -> list[InboundResult | Exception]:
        """Handle stored replies; one result, or the reply's own error, per reply, in order.
        With `answer_now` False the answers are sent by a background task (`answers.drain`
        waits for them)."""
        parsed = [parse(self.profile, r) for r in batch]
        results: dict[int, InboundResult | Exception] = {}
        for indexes in _rounds(parsed):
            done = await self._round([parsed[i] for i in indexes], answer_now)
            results.update(zip(indexes, done, strict=True))
        return [results[i] for i in range(len(batch))]

    async def _handle_batch(
        self, batch: Sequence[Received], answer_now: bool
    ) -> list[InboundResult | Exception]:
        # Looked up at each call, so the intake always runs the pipeline's current method.
        return await self.process_many(batch, answer_now=answer_now)

    async def _round(
        self, batch: Sequence[Parsed], answer_now: bool
    ) -> list[InboundResult | Exception]:
        """One reply per number: facts, decisions, answers and outcomes, sending."""
        try:
            async with self.ctx.sessions() as session:
                facts = await FactReader(self.ctx, session).read(batch)
                await session.commit()
        except Exception as exc:
            return [exc] * len(batch)
        decided = await asyncio.gather(
            *(self.decider.decide(p, f) for p, f in zip(batch, facts, strict=True))
        )
        handled = [
            (p.received, d[0].outcome, d[1])
            for p, d in zip(batch, decided, strict=True)
            if not isinstance(d, Exception)
        ]
        try:
            stored = await self.answers.store(handled)
        except Exception as exc:
            return [d if isinstance(d, Exception) else exc for d in decided]
        results = [d if isinstance(d, Exception) else d[0] for d in decided]
        # Checked once for the batch: a line dropped by its level still cost ~20 µs to build.
        if logs_info():
            for p, result in zip(batch, results, strict=True):
                if isinstance(result, InboundResult):
                    log.info(
                        "sms reply handled",
                        sid=p.received.sid,
                        outcome=result.outcome,
                        case_no=result.case_no,
                        phone=mask_phone(p.received.phone),
                    )
        if stored:
            now = max(p.received.at for p in batch)
            await self.answers.send(stored, now, background=not answer_now)
        return results


def _rounds(batch: Sequence[Parsed]) -> list[list[int]]:
    """The batch's indexes in rounds of one reply per number, each number's replies in
    arrival order: the n-th reply of a number goes in round n."""
    rounds: list[list[int]] = []
    count: dict[str, int] = {}
    for i, parsed in enumerate(batch):
        n = count.get(parsed.phone_hash, 0)
        count[parsed.phone_hash] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(i)
    return rounds
