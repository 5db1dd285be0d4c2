"""Queries over what the bridge gave up on: dead-lettered outbox rows and ticket transfers.

An outbox row is dead when `dead_at` is set and `sent_at` is not. A ticket transfer has no
such column: the transfer leaves it with no next try and not transferred after at least one
try (bridge/ticket_system.py), and its time and last error are in its `dead_letter` alert.
Re-arming is a compare-and-set on exactly those conditions, so a row acknowledged or
transferred meanwhile is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import aliased

from rating.db.records import SessionRepository
from rating.outbox.models import OutboxItem
from rating.tickets.models import Alert, Ticket
from rating.tickets.repository import transfer_key

DEAD_ALERT = "dead_letter"
TRANSFER_TOPIC = "12345.transfer"  # how a ticket transfer is named beside outbox topics


def outbox_dead() -> ColumnElement[bool]:
    return and_(OutboxItem.dead_at.is_not(None), OutboxItem.sent_at.is_(None))


def transfer_dead() -> ColumnElement[bool]:
    return and_(
        Ticket.transferred_at.is_(None),
        Ticket.transfer_next_at.is_(None),
        Ticket.transfer_attempts > 0,  # tickets older than the bridge have never been tried
    )


@dataclass(frozen=True)
class DeadTransfer:
    """A ticket the 12345 system never took, with its latest dead-letter alert if any."""

    ticket_id: int
    ticket_no: str
    attempts: int
    dead_at: datetime | None
    alert_message: str | None


@dataclass(frozen=True)
class RearmedRow:
    """One re-armed item as the UPDATE returned it."""

    ref: str  # outbox id or ticket number
    topic: str
    key: str
    last_error: str | None


class DeadLetterRepository(SessionRepository):
    """Dead-lettered outbox rows and ticket transfers: list, count, re-arm."""

    async def dead_outbox(self, limit: int) -> Sequence[OutboxItem]:
        """Newest death first."""
        result = await self.session.execute(
            select(OutboxItem)
            .where(outbox_dead())
            .order_by(OutboxItem.dead_at.desc(), OutboxItem.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def dead_transfers(self, limit: int) -> list[DeadTransfer]:
        """Newest death first (by the alert; tickets without one last)."""
        latest = aliased(Alert)
        last_alert = (
            select(func.max(latest.id))
            .where(latest.ticket_id == Ticket.id, latest.kind == DEAD_ALERT)
            .scalar_subquery()
        )
        result = await self.session.execute(
            select(
                Ticket.id,
                Ticket.ticket_no,
                Ticket.transfer_attempts,
                Alert.created_at,
                Alert.message,
            )
            .outerjoin(Alert, Alert.id == last_alert)
            .where(transfer_dead())
            .order_by(Alert.created_at.desc().nulls_last(), Ticket.id.desc())
            .limit(limit)
        )
        return [
            DeadTransfer(row.id, row.ticket_no or "", row.transfer_attempts, row[3], row[4])
            for row in result
        ]

    async def count_dead(self) -> tuple[int, int]:
        """(dead outbox rows, dead ticket transfers)."""
        rows = await self.session.scalar(select(func.count(OutboxItem.id)).where(outbox_dead()))
        tickets = await self.session.scalar(select(func.count(Ticket.id)).where(transfer_dead()))
        return int(rows or 0), int(tickets or 0)

    async def rearm_outbox(self, ids: Sequence[int] | None, now: datetime) -> list[RearmedRow]:
        """Re-arm the dead rows among `ids` (None: every dead row), in one statement."""
        where = [outbox_dead()]
        if ids is not None:
            if not ids:
                return []
            where.append(OutboxItem.id.in_(list(ids)))
        result = await self.session.execute(
            update(OutboxItem)
            .where(*where)
            # `last_error` stays: it is what the operator re-armed against, until the next
            # try overwrites it (a failure) or clears it (an acknowledgement).
            .values(dead_at=None, attempts=0, next_attempt_at=now)
            .returning(
                OutboxItem.id, OutboxItem.topic, OutboxItem.idempotency_key, OutboxItem.last_error
            )
            .execution_options(synchronize_session=False)
        )
        rows = [RearmedRow(str(r[0]), r[1], r[2], r[3]) for r in result]
        return sorted(rows, key=lambda r: int(r.ref))

    async def rearm_transfers(
        self, ticket_nos: Sequence[str] | None, now: datetime
    ) -> list[RearmedRow]:
        """Re-arm the dead transfers among `ticket_nos` (None: every one), in one statement."""
        where = [transfer_dead()]
        if ticket_nos is not None:
            if not ticket_nos:
                return []
            where.append(Ticket.ticket_no.in_(list(ticket_nos)))
        result = await self.session.execute(
            update(Ticket)
            .where(*where)
            .values(transfer_attempts=0, transfer_next_at=now)
            .returning(Ticket.ticket_no)
            .execution_options(synchronize_session=False)
        )
        nos = sorted(str(r[0]) for r in result)
        return [RearmedRow(no, TRANSFER_TOPIC, transfer_key(no), None) for no in nos]

    async def outbox_sent(self, ids: Sequence[int]) -> dict[int, datetime | None]:
        """Those of `ids` that exist, with their `sent_at` (why they were not re-armed)."""
        if not ids:
            return {}
        result = await self.session.execute(
            select(OutboxItem.id, OutboxItem.sent_at).where(OutboxItem.id.in_(list(ids)))
        )
        return {int(r[0]): r[1] for r in result}

    async def tickets_transferred(self, ticket_nos: Sequence[str]) -> dict[str, datetime | None]:
        """Those of `ticket_nos` that exist, with their `transferred_at`."""
        if not ticket_nos:
            return {}
        result = await self.session.execute(
            select(Ticket.ticket_no, Ticket.transferred_at).where(
                Ticket.ticket_no.in_(list(ticket_nos))
            )
        )
        return {str(r[0]): r[1] for r in result}
