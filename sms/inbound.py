"""Citizens' replies: opt-out and opt-in, a rating, a reason we asked for, or a help answer.

Providers repeat callbacks, so a reply is claimed once per MessageSid; everything after the
claim is idempotent as well (the rating by `source_ref`, each answer by its dedupe key), so a
reply whose first handling died half-way can be handled again safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import IntegrityError

from rating.errors import Conflict, InvalidInput
from rating.late_reason import add_late_reason
from rating.models import Evaluation
from rating.policy import MAX_REASON_CHARS
from rating.privacy import mask_phone, mask_text, normalize_phone
from rating.service import RatingRequest
from rating.sms_models import SmsInbound
from rating.sms_notice_storage import NoticeRepository
from rating.sms_storage import SmsRepository
from sms.parser import Reply, ReplyKind, parse_reply
from sms.segments import link_for

if TYPE_CHECKING:
    from sms.service import SmsService

log = structlog.get_logger("pingjia.sms")
STALE_CLAIM = timedelta(minutes=2)  # a claim older than this died with its process
REASON_WINDOW = timedelta(hours=24)  # a free-text reply counts as the reason we asked for
SECOND_WINDOW = timedelta(days=7)  # a level this long after a 追评 invitation rates again


@dataclass(frozen=True)
class InboundResult:
    """What a reply did: `outcome` is a short word for logs, tests and the inbound table."""

    outcome: str
    case_no: str | None = None
    ticket_no: str | None = None


class Inbox:
    """Handles one reply at a time; built by SmsService."""

    def __init__(self, sms: SmsService) -> None:
        self.sms = sms
        self.profile = sms.profile

    async def handle(
        self, message_sid: str, sender: str, to: str, body: str, now: datetime
    ) -> InboundResult:
        """Handle one reply; the same MessageSid again changes nothing."""
        try:
            phone = normalize_phone(sender)
        except InvalidInput:
            log.warning("sms reply from an unusable sender ignored", sid=message_sid)
            return InboundResult("bad_sender")
        phone_hash = self.sms.vault.lookup_hash(phone)
        if not await self._claim(message_sid, phone_hash, body, now):
            return InboundResult("duplicate")
        reply = parse_reply(body, self.profile.sms.opt_out_words, self.profile.sms.opt_in_words)
        result = await self._dispatch(reply, message_sid, phone, phone_hash, to, now)
        async with self.sms.sessions() as session:
            row = await SmsRepository(session).inbound(message_sid)
            if row is not None:
                row.outcome, row.handled_at = result.outcome, now
            await session.commit()
        log.info(
            "sms reply handled",
            sid=message_sid,
            outcome=result.outcome,
            case_no=result.case_no,
            phone=mask_phone(phone),
        )
        return result

    async def _claim(self, message_sid: str, phone_hash: str, body: str, now: datetime) -> bool:
        async with self.sms.sessions() as session:
            session.add(
                SmsInbound(
                    message_sid=message_sid,
                    phone_hash=phone_hash,
                    body=mask_text(body)[:1000],
                    received_at=now,
                    claimed_at=now,
                )
            )
            try:
                await session.commit()
                return True
            except IntegrityError:
                await session.rollback()
            row = await SmsRepository(session).inbound(message_sid)
            if row is None or row.handled_at is not None or row.claimed_at > now - STALE_CLAIM:
                return False
            row.claimed_at = now  # the first handler died half-way: take it over
            await session.commit()
            return True

    async def _dispatch(
        self, reply: Reply, sid: str, phone: str, phone_hash: str, to: str, now: datetime
    ) -> InboundResult:
        async with self.sms.sessions() as session:
            repo = SmsRepository(session)
            if reply.kind is ReplyKind.OPT_OUT:
                await repo.opt_out(phone_hash, now, f"sms:{sid}")
                await session.commit()
                await self._answer("opted_out", sid, phone, {}, now)
                return InboundResult("opted_out")
            if reply.kind is ReplyKind.OPT_IN:
                await repo.opt_in(phone_hash)
                await session.commit()
                await self._answer("opted_in", sid, phone, {}, now)
                return InboundResult("opted_in")
            opted_out = bool(await repo.opted_out([phone_hash]))
            target = await self._target(repo, phone_hash, to)
            waiting = await repo.awaiting_reason(phone_hash, now - REASON_WINDOW)
            again = None
            if reply.kind is ReplyKind.RATING:
                again = await self._second_target(
                    NoticeRepository(session), phone_hash, to, target, now
                )
        quiet = opted_out  # an opted-out number is still heard, never answered
        if reply.kind is ReplyKind.RATING and reply.level is not None and again is not None:
            return await self._rate_second(reply, again, sid, phone, now, quiet)
        if reply.kind is ReplyKind.RATING and reply.level is not None and target is not None:
            return await self._rate(reply, target, sid, phone, now, quiet)
        if reply.kind is ReplyKind.OTHER and waiting is not None and reply.text:
            rating, evaluation = waiting
            case_no = evaluation.case.case_no
            async with self.sms.sessions() as session:
                reason = mask_text(reply.text)[:MAX_REASON_CHARS]
                await add_late_reason(
                    session,
                    self.profile,
                    self.sms.vault,
                    rating.id,
                    reason,
                    [],
                    actor="sms",
                    now=now,
                    source_ref=f"sms:{sid}",
                )
                await session.commit()
            if not quiet:
                params = {"case_no": case_no, "label": self.profile.label(rating.level)}
                await self._answer("confirmation", sid, phone, params, now, evaluation.id)
            return InboundResult("reason_added", case_no)
        if not quiet:
            day = now.astimezone(self.profile.tz).date().isoformat()
            await self.sms.notices.reply("help", f"help:{phone_hash}:{day}", phone, {}, now)
        return InboundResult("help")

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
        self, reply: Reply, target: Evaluation, sid: str, phone: str, now: datetime, quiet: bool
    ) -> InboundResult:
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
            if not quiet:
                await self._answer(
                    "already_rated", sid, phone, {"case_no": case_no}, now, target.id
                )
            return InboundResult("already_rated", case_no)
        if not quiet:
            params = {"case_no": case_no, "label": self.profile.label(int(reply.level))}
            await self._answer("confirmation", sid, phone, params, now, target.id)
        return InboundResult("second_rated", case_no)

    async def _rate(
        self, reply: Reply, target: Evaluation, sid: str, phone: str, now: datetime, quiet: bool
    ) -> InboundResult:
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
        label = self.profile.label(int(reply.level))
        ticket_no = outcome.ticket.ticket_no if outcome.ticket else None
        if not outcome.adopted:
            if not quiet:
                await self._answer(
                    "already_rated", sid, phone, {"case_no": case_no}, now, target.id
                )
            return InboundResult("already_rated", case_no)
        needs_reason = self.profile.reason_required(int(reply.level)) and not reason
        if not quiet:
            if needs_reason:
                async with self.sms.sessions() as session:
                    link = await SmsRepository(session).link_of(target.id)
                url = link_for(self.sms.public_url, link.token) if link else self.sms.public_url
                await self._answer(
                    "ask_reason",
                    sid,
                    phone,
                    {"case_no": case_no, "label": label, "link": url},
                    now,
                    target.id,
                )
            else:
                await self._answer(
                    "confirmation", sid, phone, {"case_no": case_no, "label": label}, now, target.id
                )
        return InboundResult("asked_reason" if needs_reason else "rated", case_no, ticket_no)

    async def _answer(
        self,
        kind: str,
        sid: str,
        phone: str,
        params: dict[str, str],
        now: datetime,
        evaluation_id: int | None = None,
    ) -> None:
        await self.sms.notices.reply(kind, f"reply:{sid}", phone, params, now, evaluation_id)
