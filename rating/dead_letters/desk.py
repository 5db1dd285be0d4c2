"""Dead letters: what the bridge gave up on, listed and re-armed by an operator.

After `max_attempts` failed tries the outbox worker dead-letters a row for the central store
and the transfer sweep a ticket for the 12345 system (docs/bridge.md). Once the other side is
back, `pingjia outbox retry` re-arms them here: tries counted from zero again and due now, so
the running scheduler's `outbox` or `ticket_transfer` sweep sends them on its next run. Both
kinds and their audit lines are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import audit_values
from rating.access.models import AuditEntry
from rating.cases.repository import Repository
from rating.dead_letters.repository import (
    TRANSFER_TOPIC,
    DeadLetterRepository,
    DeadTransfer,
    RearmedRow,
)
from rating.tickets.alerts import TRANSFER_STOPPED
from rating.tickets.repository import transfer_key

OUTBOX, TICKET = "outbox", "ticket"
# Why a named item was not re-armed (`Refused.reason`; the console translates these).
NOT_FOUND = "not found"
ALREADY_SENT = "not dead-lettered: already sent"
ALREADY_TRANSFERRED = "not dead-lettered: already transferred"
STILL_TRIED = "not dead-lettered: still being tried"


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered item, as the operator sees it."""

    kind: str  # outbox | ticket
    ref: str  # what `retry` takes: the outbox row's id (--id) or the ticket number (--ticket)
    topic: str
    key: str  # the Idempotency-Key it goes with, the same on every try
    attempts: int
    dead_at: datetime | None  # None: a ticket whose dead-letter alert is missing
    last_error: str | None


@dataclass(frozen=True)
class DeadLetterList:
    """The newest dead letters, and how many there are of each kind in all."""

    items: list[DeadLetter]
    outbox_total: int
    ticket_total: int

    @property
    def total(self) -> int:
        return self.outbox_total + self.ticket_total


@dataclass(frozen=True)
class Refused:
    """An id or ticket number asked for that was not re-armed, and why."""

    kind: str
    ref: str
    reason: str


@dataclass
class Rearmed:
    """What one `retry` did."""

    outbox: list[RearmedRow] = field(default_factory=list)
    tickets: list[RearmedRow] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.outbox) + len(self.tickets)


def _transfer_letter(dead: DeadTransfer) -> DeadLetter:
    message = dead.alert_message
    # The alert says "差评工单…转12345失败（8次），已停止重试：<error>": keep the error.
    error = (message.partition(TRANSFER_STOPPED)[2] or message) if message else None
    return DeadLetter(
        TICKET,
        dead.ticket_no,
        TRANSFER_TOPIC,
        transfer_key(dead.ticket_no),
        dead.attempts,
        dead.dead_at,
        error,
    )


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values))  # a blank one is "not found"


class DeadLetterDesk:
    """List and re-arm dead-lettered outbox rows and ticket transfers."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def dead(self, limit: int) -> DeadLetterList:
        """The `limit` newest dead letters of both kinds, newest death first."""
        async with self.sessions() as session:
            repo = DeadLetterRepository(session)
            rows = await repo.dead_outbox(limit)
            transfers = await repo.dead_transfers(limit)
            outbox_total, ticket_total = await repo.count_dead()
        items = [
            DeadLetter(
                OUTBOX,
                str(r.id),
                r.topic,
                r.idempotency_key,
                r.attempts,
                r.dead_at,
                r.last_error,
            )
            for r in rows
        ] + [_transfer_letter(t) for t in transfers]
        # Undated (a ticket whose alert is missing) last; the sort is stable on ties.
        items.sort(key=lambda d: (d.dead_at is not None, d.dead_at or datetime.min), reverse=True)
        return DeadLetterList(items[:limit], outbox_total, ticket_total)

    async def rearm(
        self,
        *,
        ids: Sequence[int] = (),
        ticket_nos: Sequence[str] = (),
        everything: bool = False,
        actor: str,
        now: datetime,
    ) -> Rearmed:
        """Re-arm the dead letters named (or all of them): tries from zero, due at `now`.

        Only items dead-lettered and not sent are touched; any other id or ticket number
        named is reported in `refused` and left as it is.
        """
        wanted_ids = list(dict.fromkeys(ids))
        wanted_nos = _unique(ticket_nos)
        done = Rearmed()
        async with self.sessions() as session:
            repo = DeadLetterRepository(session)
            if everything:
                done.outbox = await repo.rearm_outbox(None, now)
                done.tickets = await repo.rearm_transfers(None, now)
            else:
                done.outbox = await repo.rearm_outbox(wanted_ids, now)
                done.tickets = await repo.rearm_transfers(wanted_nos, now)
                done.refused = await self._refusals(repo, wanted_ids, wanted_nos, done)
            audits = [
                audit_values(
                    now,
                    actor,
                    "outbox.rearmed",
                    OUTBOX,
                    row.ref,
                    topic=row.topic,
                    key=row.key,
                    last_error=(row.last_error or "")[:500],
                )
                for row in done.outbox
            ] + [
                audit_values(now, actor, "ticket.transfer_rearmed", TICKET, row.ref, key=row.key)
                for row in done.tickets
            ]
            await Repository(session).insert_rows(AuditEntry, audits)
            await session.commit()
        return done

    async def _refusals(
        self, repo: DeadLetterRepository, ids: list[int], nos: list[str], done: Rearmed
    ) -> list[Refused]:
        rearmed_ids = {int(r.ref) for r in done.outbox}
        missing_ids = [i for i in ids if i not in rearmed_ids]
        sent = await repo.outbox_sent(missing_ids)
        refused = [
            Refused(OUTBOX, str(i), _why(i in sent, sent.get(i), ALREADY_SENT)) for i in missing_ids
        ]
        rearmed_nos = {r.ref for r in done.tickets}
        missing_nos = [n for n in nos if n not in rearmed_nos]
        moved = await repo.tickets_transferred(missing_nos)
        refused += [
            Refused(TICKET, n, _why(n in moved, moved.get(n), ALREADY_TRANSFERRED))
            for n in missing_nos
        ]
        return refused


def _why(found: bool, done_at: datetime | None, already: str) -> str:
    if not found:
        return NOT_FOUND
    return already if done_at is not None else STILL_TRIED
