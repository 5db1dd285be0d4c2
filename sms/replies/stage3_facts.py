"""Stage 3 of the reply pipeline, facts: what the decision on a batch of replies reads, in
one transaction for the whole batch.

Per reply the decision needs: is the number opted out; for a level, which evaluation it rates
(the extension code's, else the number's latest pending evaluation, invited or not yet) and
whether it rates again (追评); for free text, the rating we asked a reason for. Read one reply
at a time these were four or five statements each; here they are one statement per kind of
fact for the batch, and the rules pick each reply's answer from the rows. A batch holds one
reply per number (sms/replies/pipeline.py), so no reply's decision depends on another's writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from rating.cases.models import Evaluation, Rating
from sms.context import SmsContext
from sms.parser import ReplyKind
from sms.replies.stage2_parse import Parsed
from sms.segments import new_token
from sms.storage.inbox import InboxRepository, Invited, Named
from sms.storage.repository import SmsRepository
from sms.storage.sweeps import SweepRepository

REASON_WINDOW = timedelta(hours=24)  # a free-text reply counts as the reason we asked for
SECOND_WINDOW = timedelta(days=7)  # a level this long after a 追评 invitation rates again
# A level that finds nothing open is answered "already rated" for a case registered this
# recently (rated on the call, or by an earlier reply before its invitation), else "help".
RECENT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Target:
    """The evaluation a level is about."""

    id: int
    case_no: str
    status: str


@dataclass
class Facts:
    """What the batch's transaction read about one sender, for the decision."""

    quiet: bool = False  # an opted-out number is still heard, never answered
    target: Target | None = None
    waiting: tuple[Rating, Evaluation] | None = None
    again: Target | None = None
    link: str | None = None  # the target's rating-link token, for an `ask_reason` answer


def _newest(rows: Sequence[Invited]) -> Invited | None:
    return max(rows, key=lambda r: (r.created_at, r.message_id), default=None)


def _target(row: Invited | Named) -> Target:
    return Target(row.evaluation_id, row.case_no, row.status)


class FactReader:
    """Reads the facts of one batch; built per batch by the pipeline."""

    def __init__(self, ctx: SmsContext, session: AsyncSession) -> None:
        self.ctx = ctx
        self.session = session
        self.repo = InboxRepository(session)

    def extension(self, p: Parsed) -> int | None:
        """The evaluation id a reply's extension code names (given apart by the provider, or
        read from the address it was sent to, at intake: sms/replies/stage1_intake.py)."""
        ext = p.received.extension
        return int(ext) if ext and ext.isdigit() else None

    async def read(self, batch: Sequence[Parsed]) -> list[Facts]:
        """Opt-outs and opt-ins written, then what the other replies need read: only that."""
        sms = SmsRepository(self.session)
        facts = [Facts() for _ in batch]
        for p in batch:
            if p.reply.kind is ReplyKind.OPT_OUT:
                await sms.opt_out(p.phone_hash, p.received.at, f"sms:{p.received.sid}")
            elif p.reply.kind is ReplyKind.OPT_IN:
                await sms.opt_in(p.phone_hash)
        others = [
            i
            for i, p in enumerate(batch)
            if p.reply.kind not in (ReplyKind.OPT_OUT, ReplyKind.OPT_IN)
        ]
        quiet = await sms.opted_out(batch[i].phone_hash for i in others)
        for i in others:
            facts[i].quiet = batch[i].phone_hash in quiet
        levels = [
            i
            for i in others
            if batch[i].reply.kind is ReplyKind.RATING and batch[i].reply.level is not None
        ]
        await self._targets([batch[i] for i in levels], [facts[i] for i in levels])
        for i in others:
            reply = batch[i].reply
            if reply.kind is ReplyKind.OTHER and reply.text:
                since = batch[i].received.at - REASON_WINDOW
                facts[i].waiting = await sms.awaiting_reason(batch[i].phone_hash, since)
        return facts

    async def _targets(self, batch: Sequence[Parsed], facts: Sequence[Facts]) -> None:
        """Each level's evaluation (and 追评), and the rating link its answer may need."""
        if not batch:
            return
        hashes = {p.phone_hash for p in batch}
        invited: dict[str, list[Invited]] = {}
        for row in await self.repo.invitations_to(hashes):
            invited.setdefault(row.phone_hash, []).append(row)
        registered: dict[str, list[Invited]] = {}
        recent = min(p.received.at for p in batch) - RECENT_WINDOW
        for row in await self.repo.registered_to(hashes, recent):
            registered.setdefault(row.phone_hash, []).append(row)
        named = await self.repo.named({n for p in batch if (n := self.extension(p)) is not None})
        seconds: dict[str, list[Invited]] = {}
        if self.ctx.second is not None:
            since = min(p.received.at for p in batch) - SECOND_WINDOW
            for row in await self.repo.second_invitations_to(hashes, since):
                seconds.setdefault(row.phone_hash, []).append(row)
        for p, f in zip(batch, facts, strict=True):
            rows = invited.get(p.phone_hash, [])
            f.target = self._first(p, rows, registered.get(p.phone_hash, []), named)
            if self.ctx.second is not None:
                f.again = self._second(p, rows, seconds.get(p.phone_hash, []), f.target)
        profile = self.ctx.profile
        asking = {
            f.target.id
            for p, f in zip(batch, facts, strict=True)
            if f.target is not None
            and p.reply.level is not None
            and profile.reason_required(int(p.reply.level))
            and not p.reply.reason
        }
        links = SweepRepository(self.session)
        tokens = await links.link_tokens(asking)
        if missing := asking - tokens.keys():
            # A reply before its invitation (SPEC section 4): the evaluation has no link yet,
            # and the answer asking for a reason needs one; made as the invitation would.
            now = min(p.received.at for p in batch)
            due = await self.repo.due_dates(missing)
            new = {e: new_token() for e in sorted(due)}
            await links.add_links(
                [
                    {"token": t, "evaluation_id": e, "created_at": now, "expires_at": due[e]}
                    for e, t in new.items()
                ]
            )
            tokens |= new
        for f in facts:
            if f.target is not None:
                f.link = tokens.get(f.target.id)

    def _first(
        self,
        p: Parsed,
        invited: Sequence[Invited],
        registered: Sequence[Invited],
        named: dict[int, Named],
    ) -> Target | None:
        """The evaluation a reply is about: the extension code it was sent to (if the case
        belongs to the sender's number), else the number's latest pending evaluation, invited
        or not yet (SPEC section 4: a reply rates it whether or not an invitation went out),
        latest by its newest invitation or reminder, else by its registration; else the
        newest evaluation invited or registered recently at all (answered "already rated")."""
        code = self.extension(p)
        found = named.get(code) if code is not None else None
        if found is not None and found.phone_hash == p.phone_hash:
            return _target(found)
        open_ = [r for r in (*invited, *registered) if r.status == "pending"]
        newest = _newest(open_) or _newest([*invited, *registered])
        return _target(newest) if newest is not None else None

    def _second(
        self,
        p: Parsed,
        invited: Sequence[Invited],
        seconds: Sequence[Invited],
        first: Target | None,
    ) -> Target | None:
        """The evaluation a level rates again (追评): the one named by the extension code, else
        the newest open second-rating invitation to this number, unless a first-rating
        invitation still open went to the number after it (the newer message wins)."""
        named = self.extension(p)
        since: datetime = p.received.at - SECOND_WINDOW
        found = _newest(
            [
                s
                for s in seconds
                if s.created_at >= since and (named is None or s.evaluation_id == named)
            ]
        )
        if found is None:
            return None
        if named is None and first is not None and first.status == "pending":
            last = _newest([r for r in invited if r.evaluation_id == first.id])
            if last is not None and last.created_at > found.created_at:
                return None
        return _target(found)
