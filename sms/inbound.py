"""Citizens' replies: opt-out and opt-in, a rating, a reason we asked for, or a help answer.

Providers repeat callbacks, so a reply is stored and claimed once per MessageSid
(sms/intake.py); everything after the claim is idempotent as well (the rating by `source_ref`,
each answer by its dedupe key), so a reply whose first handling died half-way can be handled
again safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from rating.errors import Conflict
from rating.late_reason import add_late_reason
from rating.models import Evaluation, Rating
from rating.policy import MAX_REASON_CHARS
from rating.privacy import mask_phone, mask_text
from rating.service import RatingRequest
from rating.sms_notice_storage import NoticeRepository
from rating.sms_storage import SmsRepository
from sms.answers import Answer, Answers
from sms.intake import Intake, Received
from sms.parser import Reply, ReplyKind, parse_reply
from sms.segments import link_for

if TYPE_CHECKING:
    from sms.service import SmsService

log = structlog.get_logger("pingjia.sms")
REASON_WINDOW = timedelta(hours=24)  # a free-text reply counts as the reason we asked for
SECOND_WINDOW = timedelta(days=7)  # a level this long after a 追评 invitation rates again


@dataclass(frozen=True)
class InboundResult:
    """What a reply did: `outcome` is a short word for logs, tests and the inbound table."""

    outcome: str
    case_no: str | None = None
    ticket_no: str | None = None


@dataclass
class Facts:
    """What the claim's transaction read about the sender, for the decision."""

    quiet: bool = False  # an opted-out number is still heard, never answered
    target: Evaluation | None = None
    waiting: tuple[Rating, Evaluation] | None = None
    again: Evaluation | None = None


class Inbox:
    """Decides what a stored reply does; built by SmsService.

    A reply is stored first (sms/intake.py: one row per MessageSid). Handling it: one
    transaction writes an opt-out or opt-in, or reads what the decision needs; a rating goes
    through the domain (its group commit); one more transaction stores our answer (as `held`,
    under its dedupe key) with the reply's outcome. The answer is then sent (sms/answers.py).
    """

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
        """Handle a stored reply. With `answer_now` False the answer is sent by a background
        task (`answers.drain` waits for them)."""
        sid, phone, now = received.sid, received.phone, received.at
        phone_hash = self.sms.vault.lookup_hash(phone)
        reply = parse_reply(
            received.body, self.profile.sms.opt_out_words, self.profile.sms.opt_in_words
        )
        async with self.sms.sessions() as session:
            facts = await self._facts(session, reply, sid, phone_hash, received.to, now)
            await session.commit()
        result, answer = await self._dispatch(reply, facts, sid, phone_hash, now)
        message_id = await self.answers.store(sid, result.outcome, answer, phone, now)
        log.info(
            "sms reply handled",
            sid=sid,
            outcome=result.outcome,
            case_no=result.case_no,
            phone=mask_phone(phone),
        )
        if message_id is not None:
            await self.answers.send(message_id, now, background=not answer_now)
        return result

    async def _facts(
        self,
        session: AsyncSession,
        reply: Reply,
        sid: str,
        phone_hash: str,
        to: str,
        now: datetime,
    ) -> Facts:
        """Opt-out or opt-in written, or what a rating or a reason needs read: only that."""
        repo = SmsRepository(session)
        if reply.kind is ReplyKind.OPT_OUT:
            await repo.opt_out(phone_hash, now, f"sms:{sid}")
            return Facts()
        if reply.kind is ReplyKind.OPT_IN:
            await repo.opt_in(phone_hash)
            return Facts()
        facts = Facts(quiet=bool(await repo.opted_out([phone_hash])))
        if reply.kind is ReplyKind.RATING and reply.level is not None:
            facts.target = await self._target(repo, phone_hash, to)
            facts.again = await self._second_target(
                NoticeRepository(session), phone_hash, to, facts.target, now
            )
        elif reply.kind is ReplyKind.OTHER and reply.text:
            facts.waiting = await repo.awaiting_reason(phone_hash, now - REASON_WINDOW)
        return facts

    async def _dispatch(
        self, reply: Reply, facts: Facts, sid: str, phone_hash: str, now: datetime
    ) -> tuple[InboundResult, Answer | None]:
        if reply.kind is ReplyKind.OPT_OUT:
            return InboundResult("opted_out"), Answer("opted_out", f"reply:{sid}")
        if reply.kind is ReplyKind.OPT_IN:
            return InboundResult("opted_in"), Answer("opted_in", f"reply:{sid}")
        if reply.level is not None and facts.again is not None:
            result, answer = await self._rate_second(reply, facts.again, sid, now)
        elif reply.level is not None and facts.target is not None:
            result, answer = await self._rate(reply, facts.target, sid, now)
        elif facts.waiting is not None and reply.text:
            result, answer = await self._add_reason(reply.text, *facts.waiting, sid, now)
        else:
            day = now.astimezone(self.profile.tz).date().isoformat()
            result, answer = InboundResult("help"), Answer("help", f"help:{phone_hash}:{day}")
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

    async def _target(self, repo: SmsRepository, phone_hash: str, to: str) -> Evaluation | None:
        """The evaluation a reply is about: the extension code it was sent to, else the newest
        invitation to this number that is still open."""
        ext = self.sms.provider.extension(to) if to else None
        if ext and ext.isdigit():
            found = await repo.evaluation_for(int(ext), phone_hash)
            if found is not None:
                return found
        return await repo.latest_open_invitation(phone_hash)

    async def _second_target(
        self,
        repo: NoticeRepository,
        phone_hash: str,
        to: str,
        first: Evaluation | None,
        now: datetime,
    ) -> Evaluation | None:
        """The evaluation a level rates again (追评): the one named by the extension code, else
        the newest open second-rating invitation to this number, unless a first-rating
        invitation still open went to the number after it (the newer message wins)."""
        if self.sms.second is None:
            return None
        ext = self.sms.provider.extension(to) if to else None
        named = int(ext) if ext and ext.isdigit() else None
        found = await repo.open_second_invitation(phone_hash, now - SECOND_WINDOW, named)
        if found is None:
            return None
        message, evaluation = found
        if named is None and first is not None and first.status == "pending":
            invited = await repo.last_invited_at(first.id, phone_hash)
            if invited is not None and invited > message.created_at:
                return None
        return evaluation

    async def _rate_second(
        self, reply: Reply, target: Evaluation, sid: str, now: datetime
    ) -> tuple[InboundResult, Answer]:
        """Store a 追评 (attempt 2) through the domain; one per invitation."""
        assert reply.level is not None and self.sms.second is not None
        case_no = target.case.case_no
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
        self, reply: Reply, target: Evaluation, sid: str, now: datetime
    ) -> tuple[InboundResult, Answer]:
        assert reply.level is not None
        case_no = target.case.case_no
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
            async with self.sms.sessions() as session:
                link = await SmsRepository(session).link_of(target.id)
            url = link_for(self.sms.public_url, link.token) if link else self.sms.public_url
            params["link"] = url
            answer = Answer("ask_reason", f"reply:{sid}", params, target.id)
            return InboundResult("asked_reason", case_no, ticket_no), answer
        answer = Answer("confirmation", f"reply:{sid}", params, target.id)
        return InboundResult("rated", case_no, ticket_no), answer
