"""Queries of the ticket workflow: tickets, history, extensions, alerts, contacts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from rating.cases.models import Case
from rating.db.bulk_sql import matching
from rating.db.records import SessionRepository
from rating.tickets.models import AgencyContact, Alert, Ticket, TicketEvent, TicketExtension


def transfer_key(ticket_no: str) -> str:
    """The Idempotency-Key a ticket's transfer to 12345 goes with, the same on every try."""
    return f"ticket-{ticket_no}"


@dataclass(frozen=True)
class TicketFilter:
    """The console's filters; None means any."""

    status: str | None = None
    agency: str | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    case_no: str | None = None
    limit: int = 100


class TicketRepository(SessionRepository):
    """Named queries over one session; the caller owns the transaction."""

    async def tickets_for_case(self, case_id: int) -> Sequence[Ticket]:
        """A case's tickets, oldest first."""
        result = await self.session.execute(
            select(Ticket).where(Ticket.case_id == case_id).order_by(Ticket.id)
        )
        return result.scalars().all()

    async def tickets_for_ratings(self, rating_ids: Sequence[int]) -> dict[int, Ticket]:
        """The tickets born of these ratings, by rating id (one ticket per rating at most)."""
        if not rating_ids:
            return {}
        dialect = self.session.get_bind().dialect
        result = await self.session.execute(
            select(Ticket).where(matching(Ticket.rating_id, list(rating_ids), dialect))
        )
        return {ticket.rating_id: ticket for ticket in result.scalars()}

    async def add_reason(self, rating_id: int, reason: str | None, tags: list[str]) -> None:
        """A reason sent after the rating, onto the ticket it opened (if any)."""
        values: dict[str, Any] = {"reason": reason}
        if tags:
            values["tags"] = tags
        await self.session.execute(
            update(Ticket).where(Ticket.rating_id == rating_id).values(**values)
        )

    async def ticket_by_no(self, ticket_no: str) -> Ticket | None:
        result = await self.session.execute(
            select(Ticket).where(Ticket.ticket_no == ticket_no).options(selectinload(Ticket.case))
        )
        return result.scalar_one_or_none()

    async def tickets(self, filters: TicketFilter, now: datetime) -> Sequence[Ticket]:
        """Tickets for the console, soonest deadline first (those without one last)."""
        query = select(Ticket).options(selectinload(Ticket.case))
        if filters.status is not None:
            query = query.where(Ticket.status == filters.status)
        if filters.agency is not None:
            query = query.where(Ticket.agency == filters.agency)
        if filters.case_no is not None:
            query = query.join(Case, Ticket.case_id == Case.id).where(
                Case.case_no == filters.case_no
            )
        if filters.overdue is True:
            query = query.where(Ticket.due_at < now)
        elif filters.overdue is False:
            query = query.where((Ticket.due_at.is_(None)) | (Ticket.due_at >= now))
        if filters.due_before is not None:
            query = query.where(Ticket.due_at < filters.due_before)
        query = query.order_by(Ticket.due_at.is_(None), Ticket.due_at, Ticket.id)
        return (await self.session.execute(query.limit(filters.limit))).scalars().all()

    async def move(self, ticket_id: int, from_status: str, values: dict[str, Any]) -> bool:
        """Compare-and-set on the status: False when someone else moved the ticket first."""
        result = await self.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.status == from_status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def set_values(self, ticket_id: int, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def events(self, ticket_id: int) -> Sequence[TicketEvent]:
        result = await self.session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return result.scalars().all()

    async def events_for(self, ticket_ids: Sequence[int]) -> dict[int, list[TicketEvent]]:
        """The history of several tickets in one query, by ticket id."""
        by_ticket: dict[int, list[TicketEvent]] = {tid: [] for tid in ticket_ids}
        if ticket_ids:
            result = await self.session.execute(
                select(TicketEvent)
                .where(TicketEvent.ticket_id.in_(ticket_ids))
                .order_by(TicketEvent.id)
            )
            for event in result.scalars():
                by_ticket[event.ticket_id].append(event)
        return by_ticket

    async def event_by_ref(self, ticket_id: int, event_ref: str) -> TicketEvent | None:
        result = await self.session.execute(
            select(TicketEvent).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.event_ref == event_ref
            )
        )
        return result.scalar_one_or_none()

    async def extensions(self, ticket_id: int) -> Sequence[TicketExtension]:
        result = await self.session.execute(
            select(TicketExtension)
            .where(TicketExtension.ticket_id == ticket_id)
            .order_by(TicketExtension.id)
        )
        return result.scalars().all()

    async def extensions_for(self, ticket_ids: Sequence[int]) -> dict[int, list[TicketExtension]]:
        by_ticket: dict[int, list[TicketExtension]] = {tid: [] for tid in ticket_ids}
        if ticket_ids:
            result = await self.session.execute(
                select(TicketExtension)
                .where(TicketExtension.ticket_id.in_(ticket_ids))
                .order_by(TicketExtension.id)
            )
            for extension in result.scalars():
                by_ticket[extension.ticket_id].append(extension)
        return by_ticket

    async def extension(self, ticket_id: int, extension_id: int) -> TicketExtension | None:
        result = await self.session.execute(
            select(TicketExtension).where(
                TicketExtension.id == extension_id, TicketExtension.ticket_id == ticket_id
            )
        )
        return result.scalar_one_or_none()

    async def decide_extension(self, extension_id: int, values: dict[str, Any]) -> bool:
        """Compare-and-set: only a request still open can be granted or refused."""
        result = await self.session.execute(
            update(TicketExtension)
            .where(TicketExtension.id == extension_id, TicketExtension.status == "requested")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def claim_alert_tickets(self, now: datetime, limit: int) -> Sequence[Ticket]:
        """Tickets whose next alert is due, locked; other processes skip them (SKIP LOCKED)."""
        result = await self.session.execute(
            select(Ticket)
            .where(Ticket.next_alert_at <= now)
            .order_by(Ticket.next_alert_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Ticket)
        )
        return result.scalars().all()

    async def claim_transfers(self, now: datetime, lease_until: datetime, limit: int) -> list[int]:
        """Tickets due for transfer to 12345, leased to this process until `lease_until`."""
        ids = list(
            (
                await self.session.execute(
                    select(Ticket.id)
                    .where(Ticket.transfer_next_at <= now)
                    .order_by(Ticket.transfer_next_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if ids:
            await self.session.execute(
                update(Ticket)
                .where(Ticket.id.in_(ids))
                .values(transfer_next_at=lease_until)
                .execution_options(synchronize_session=False)
            )
        return ids

    async def tickets_by_ids(self, ids: Sequence[int]) -> Sequence[Ticket]:
        result = await self.session.execute(
            select(Ticket).where(Ticket.id.in_(ids)).options(selectinload(Ticket.case))
        )
        return result.scalars().all()

    async def alert_exists(self, dedupe_key: str) -> bool:
        result = await self.session.execute(select(Alert.id).where(Alert.dedupe_key == dedupe_key))
        return result.first() is not None

    async def alerts(
        self, ticket_no: str | None, since: datetime | None, limit: int, agency: str | None = None
    ) -> Sequence[Alert]:
        query = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if agency is not None:
            query = query.where(Alert.agency == agency)
        if ticket_no is not None:
            query = query.where(Alert.ticket_no == ticket_no)
        if since is not None:
            query = query.where(Alert.created_at >= since)
        return (await self.session.execute(query)).scalars().all()

    async def set_alert_sms(self, alert_id: int, status: str, detail: str | None) -> None:
        await self.session.execute(
            update(Alert).where(Alert.id == alert_id).values(sms_status=status, sms_detail=detail)
        )

    async def contact(self, agency: str) -> AgencyContact | None:
        return await self.session.get(AgencyContact, agency)

    async def contacts(self) -> Sequence[AgencyContact]:
        result = await self.session.execute(select(AgencyContact).order_by(AgencyContact.agency))
        return result.scalars().all()
