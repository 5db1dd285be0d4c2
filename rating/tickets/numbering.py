"""Ticket numbers without gaps: a counter row updated in the ticket's own transaction.

A PostgreSQL sequence keeps what a rolled-back transaction took, and numbering after the rating
(as before) spent a number on every rating, refused ones included. The counter row's UPDATE
holds its lock until the transaction ends, so concurrent transactions number one after another
and a rollback gives the numbers back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rating.access.audit import audit_values
from rating.policy.rules import ticket_number
from rating.tickets.models import Ticket, TicketCounter

COUNTER = "tickets"


async def take_serials(session: AsyncSession, count: int) -> list[int]:
    """`count` consecutive serials from the counter, in the caller's transaction."""
    if count == 0:
        return []
    # An upsert: the migration writes the row, but a schema emptied or made otherwise starts
    # here too, and two first tickets at once must not both insert it.
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        upsert(TicketCounter)
        .values(name=COUNTER, value=count)
        .on_conflict_do_update(
            index_elements=[TicketCounter.name], set_={"value": TicketCounter.value + count}
        )
        .returning(TicketCounter.value)
    )
    last = (await session.execute(statement)).scalar_one()
    return list(range(last - count + 1, last + 1))


async def number_tickets(
    session: AsyncSession, tickets: Sequence[Ticket], tz: tzinfo
) -> list[dict[str, Any]]:
    """Give new tickets their numbers (local date and serial); their `ticket.created` audit
    lines' values. Call it last before the insert: the counter stays locked until commit."""
    audits = []
    for ticket, serial in zip(tickets, await take_serials(session, len(tickets)), strict=True):
        ticket.ticket_no = ticket_number(ticket.created_at.astimezone(tz), serial)
        audits.append(
            audit_values(
                ticket.created_at,
                "system",
                "ticket.created",
                "ticket",
                ticket.ticket_no,
                level=ticket.level,
            )
        )
    return audits
