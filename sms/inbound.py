"""Citizens' replies: opt-out and opt-in, a rating, a reason we asked for, or a help answer.

Providers repeat callbacks, so a reply is stored and claimed once per MessageSid
(sms/intake.py); everything after the claim is idempotent as well (the rating by `source_ref`,
each answer by its dedupe key), so a reply whose first handling died half-way can be handled
again safely.

Replies are handled in batches (`Inbox.process_many`; one reply is a batch of one), a round of
statements per batch instead of per reply: one transaction reads what the decisions need
(sms/facts.py), the ratings share the domain's group commit, one transaction stores every
answer (`held`) with every reply's outcome, one statement takes the answers to send. A batch
holds one reply per number: a second reply from the same number goes into the next round, so
it is decided after the first, as if they had come one by one. A reply that fails is left
unhandled (the `sms_inbox` sweep retries it); the others of its batch go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from rating.cases.models import Evaluation, Rating
from rating.errors import Conflict
from rating.policy.rules import MAX_REASON_CHARS
from rating.privacy import mask_phone, mask_text
from rating.ratings.late_reason import add_late_reason
from rating.ratings.requests import RatingRequest
from sms.answers import Answer, Answers, logs_info
from sms.facts import FactReader, Facts, Parsed, Target
from sms.intake import Intake, Received
from sms.parser import Reply, ReplyKind, parse_reply
from sms.segments import link_for

if TYPE_CHECKING:
    from sms.service import SmsService

log = structlog.get_logger("pingjia.sms")
Decision = tuple["InboundResult", Answer | None]


@dataclass(frozen=True)
class InboundResult:
    """What a reply did: `outcome` is a short word for logs, tests and the inbound table."""

    outcome: str
    case_no: str | None = None
    ticket_no: str | None = None


class Inbox:
    """Decides what stored replies do; built by SmsService."""

    def __init__(self, sms: SmsService) -> None:
        self.sms = sms
        self.profile = sms.profile
        self.answers = Answers(sms)
        self.intake = Intake(sms, self)

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
        nothing. (The webhook stores, answers Twilio, and handles in the background.)"""
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
        parsed = [self._parse(r) for r in batch]
        results: dict[int, InboundResult | Exception] = {}
        for indexes in _rounds(parsed):
            done = await self._round([parsed[i] for i in indexes], answer_now)
            results.update(zip(indexes, done, strict=True))
        return [results[i] for i in range(len(batch))]

    def _parse(self, received: Received) -> Parsed:
        words = self.profile.sms
        reply = parse_reply(received.body, words.opt_out_words, words.opt_in_words)
        return Parsed(received, reply, received.phone_hash)

    async def _round(
        self, batch: Sequence[Parsed], answer_now: bool
    ) -> list[InboundResult | Exception]:
        """One reply per number: facts, decisions, answers and outcomes, sending."""
        try:
            async with self.sms.sessions() as session:
                facts = await FactReader(self.sms, session).read(batch)
                await session.commit()
        except Exception as exc:
            return [exc] * len(batch)
        decided = await asyncio.gather(
            *(self._decide(p, f) for p, f in zip(batch, facts, strict=True))
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

    async def _decide(self, parsed: Parsed, facts: Facts) -> Decision | Exception:
        try:
            return await self._dispatch(parsed, facts)
        except Exception as exc:
            return exc

    async def _dispatch(self, parsed: Parsed, facts: Facts) -> Decision:
        reply, sid, now = parsed.reply, parsed.received.sid, parsed.received.at
        if reply.kind is ReplyKind.OPT_OUT:
            return InboundResult("opted_out"), Answer("opted_out", f"reply:{sid}")
        if reply.kind is ReplyKind.OPT_IN:
            return InboundResult("opted_in"), Answer("opted_in", f"reply:{sid}")
        if reply.level is not None and facts.again is not None:
            result, answer = await self._rate_second(reply, facts.again, sid, now)
        elif reply.level is not None and facts.target is not None:
            result, answer = await self._rate(reply, facts.target, facts.link, sid, now)
        elif facts.waiting is not None and reply.text:
            result, answer = await self._add_reason(reply.text, *facts.waiting, sid, now)
        else:
            day = now.astimezone(self.profile.tz).date().isoformat()
            result = InboundResult("help")
            answer = Answer("help", f"help:{parsed.phone_hash}:{day}")
        return result, None if facts.quiet else answer

    async def _add_reason(
        self, text: str, rating: Rating, evaluation: Evaluation, sid: str, now: datetime
    ) -> tuple[InboundResult, Answer]:
        """A free-text reply to our request for a reason: onto the rating and its ticket."""
        case_no = evaluation.case.case_no
        async with self.sms.sessions() as session:
            await add_late_reason(
                session,
                self.profile,
                self.sms.vault,
                rating.id,
                mask_text(text)[:MAX_REASON_CHARS],
                [],
                actor="sms",
                now=now,
                source_ref=f"sms:{sid}",
            )
            await session.commit()
        params = {"case_no": case_no, "label": self.profile.label(rating.level)}
        answer = Answer("confirmation", f"reply:{sid}", params, evaluation.id)
        return InboundResult("reason_added", case_no), answer

    async def _rate_second(
        self, reply: Reply, target: Target, sid: str, now: datetime
    ) -> tuple[InboundResult, Answer]:
        """Store a 追评 (attempt 2) through the domain; one per invitation."""
        assert reply.level is not None and self.sms.second is not None
        case_no = target.case_no
        try:
            await self.sms.second.rate_second(
                case_no,
                int(reply.level),
                "sms",
                reason=mask_text(reply.reason)[:MAX_REASON_CHARS] if reply.reason else None,
                source_ref=f"sms:{sid}",
                actor="sms",
                now=now,
            )
        except Conflict:  # answered meanwhile (another reply, another process)
            answer = Answer("already_rated", f"reply:{sid}", {"case_no": case_no}, target.id)
            return InboundResult("already_rated", case_no), answer
        params = {"case_no": case_no, "label": self.profile.label(int(reply.level))}
        answer = Answer("confirmation", f"reply:{sid}", params, target.id)
        return InboundResult("second_rated", case_no), answer

    async def _rate(
        self, reply: Reply, target: Target, link: str | None, sid: str, now: datetime
    ) -> tuple[InboundResult, Answer]:
        assert reply.level is not None
        case_no = target.case_no
        reason = mask_text(reply.reason)[:MAX_REASON_CHARS] if reply.reason else None
        outcome = await self.sms.ratings.rate(
            RatingRequest(
                case_no=case_no,
                level=int(reply.level),
                channel="sms",
                reason=reason,
                source_ref=f"sms:{sid}",
                require_reason=False,
            ),
            actor="sms",
            now=now,
        )
        if not outcome.adopted:
            answer = Answer("already_rated", f"reply:{sid}", {"case_no": case_no}, target.id)
            return InboundResult("already_rated", case_no), answer
        params = {"case_no": case_no, "label": self.profile.label(int(reply.level))}
        ticket_no = outcome.ticket.ticket_no if outcome.ticket else None
        if self.profile.reason_required(int(reply.level)) and not reason:
            url = link_for(self.sms.public_url, link) if link else self.sms.public_url
            params["link"] = url
            answer = Answer("ask_reason", f"reply:{sid}", params, target.id)
            return InboundResult("asked_reason", case_no, ticket_no), answer
        answer = Answer("confirmation", f"reply:{sid}", params, target.id)
        return InboundResult("rated", case_no, ticket_no), answer


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
