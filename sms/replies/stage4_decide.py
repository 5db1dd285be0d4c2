"""Stage 4 of the reply pipeline, the decision: what each reply does, from its facts.

Opt-out and opt-in words are answered with their confirmation (stage 3 wrote them); a level
rates the evaluation stage 3 found (or its 追评); free text within the window is the reason we
asked for; anything else gets the help answer, once a day per number. A number that opted out
is still heard, never answered. Every write here is idempotent by the reply's MessageSid
(`source_ref = sms:<sid>`), so a reply handled again changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from rating.cases.models import Evaluation, Rating
from rating.errors import Conflict
from rating.policy.rules import MAX_REASON_CHARS
from rating.privacy import mask_text
from rating.ratings.late_reason import add_late_reason
from rating.ratings.requests import RatingRequest
from sms.context import SmsContext
from sms.parser import Reply, ReplyKind
from sms.replies.outcome import Answer, Decision, InboundResult
from sms.replies.stage2_parse import Parsed
from sms.replies.stage3_facts import Facts, Target


class Decider:
    """Decides replies over the context's rating services; built by the pipeline."""

    def __init__(self, ctx: SmsContext) -> None:
        self.ctx = ctx
        self.profile = ctx.profile

    async def decide(self, parsed: Parsed, facts: Facts) -> Decision | Exception:
        """The reply's result and answer, or the error that stopped it (raised by no one)."""
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
        async with self.ctx.sessions() as session:
            await add_late_reason(
                session,
                self.profile,
                self.ctx.vault,
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
        assert reply.level is not None and self.ctx.second is not None
        case_no = target.case_no
        try:
            await self.ctx.second.rate_second(
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
        outcome = await self.ctx.ratings.rate(
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
            params["link"] = self.ctx.link(link)
            answer = Answer("ask_reason", f"reply:{sid}", params, target.id)
            return InboundResult("asked_reason", case_no, ticket_no), answer
        answer = Answer("confirmation", f"reply:{sid}", params, target.id)
        return InboundResult("rated", case_no, ticket_no), answer
