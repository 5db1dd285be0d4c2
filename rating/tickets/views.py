"""Reading tickets: the view the API shows (a ticket, its history, its extensions).

`TicketReader` is the base of the workflow's use cases (rating/tickets/extensions.py,
rating/tickets/service.py); `Step` is what a caller sends with a transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.errors import NotFound
from rating.policy.profile import Profile
from rating.tickets.models import Ticket, TicketEvent, TicketExtension
from rating.tickets.repository import TicketFilter, TicketRepository
from rating.tickets.rules import GrantedExtension, deadlines_in_force


@dataclass(frozen=True)
class Step:
    """What the caller sends with a transition; which fields a step needs is checked here."""

    note: str | None = None
    agency: str | None = None
    evidence: str | None = None
    feedback: str | None = None
    event_ref: str | None = None  # an external system's event id: applied once


@dataclass
class TicketView:
    """A ticket with its case number, history and extensions."""

    ticket: Ticket
    case_no: str
    events: list[TicketEvent] = field(default_factory=list)
    extensions: list[TicketExtension] = field(default_factory=list)

    def in_force(self) -> dict[str, datetime]:
        granted = [
            GrantedExtension(e.deadline, e.requested_due_at, e.decided_at)
            for e in self.extensions
            if e.status == "granted" and e.decided_at is not None
        ]
        return deadlines_in_force(self.ticket.deadlines, granted)


class TicketReader:
    """The read side, shared by the workflow's use cases."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], profile: Profile) -> None:
        self.sessions = sessions
        self.profile = profile

    async def list(self, filters: TicketFilter, now: datetime) -> list[TicketView]:
        async with self.sessions() as session:
            repo = TicketRepository(session)
            found = await repo.tickets(filters, now)
            ids = [t.id for t in found]
            events, extensions = await repo.events_for(ids), await repo.extensions_for(ids)
            return [TicketView(t, t.case.case_no, events[t.id], extensions[t.id]) for t in found]

    async def get(self, ticket_no: str) -> TicketView:
        async with self.sessions() as session:
            return await self._view(TicketRepository(session), ticket_no)

    async def _view(self, repo: TicketRepository, ticket_no: str) -> TicketView:
        ticket = await repo.ticket_by_no(ticket_no)
        if ticket is None:
            raise NotFound(
                f"no ticket {ticket_no!r}", code="ticket_not_found", params={"ticket_no": ticket_no}
            )
        return TicketView(
            ticket,
            ticket.case.case_no,
            list(await repo.events(ticket.id)),
            list(await repo.extensions(ticket.id)),
        )
