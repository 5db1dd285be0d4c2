"""Extensions (延期): an agency asks for a later date with a reason (Sanmenxia Art. 15), the
bureau grants or refuses; both deadlines are kept, and a grant moves the one in force.
"""

from __future__ import annotations

from datetime import datetime

from rating.access.audit import AuditLog
from rating.errors import Conflict, InvalidInput, NotFound
from rating.tickets.models import Ticket, TicketEvent, TicketExtension
from rating.tickets.repository import TicketRepository
from rating.tickets.rules import (
    EXTENSION_DECIDERS,
    EXTENSION_REQUESTERS,
    OPEN_STATUSES,
    Forbidden,
    stage_deadline,
)
from rating.tickets.views import TicketReader, TicketView


class TicketExtensions(TicketReader):
    """The extension use cases; TicketService adds the transitions."""

    async def request_extension(
        self,
        ticket_no: str,
        *,
        new_due_at: datetime,
        reason: str,
        deadline: str | None,
        role: str,
        actor: str,
        now: datetime,
    ) -> TicketView:
        """An agency asks for more time (Sanmenxia Art. 15); one open request at a time."""
        if role not in EXTENSION_REQUESTERS:
            raise Forbidden(
                f"role {role} may not ask for an extension; agencies do",
                code="extension_request_forbidden",
                params={"role": role},
            )
        if not reason.strip():
            raise InvalidInput("an extension needs a reason", code="extension_reason_required")
        async with self.sessions() as session:
            repo = TicketRepository(session)
            view = await self._view(repo, ticket_no)
            name = deadline or stage_deadline(self.profile, view.ticket.status)
            in_force = view.in_force()
            if name is None or name not in in_force:
                raise Conflict(
                    f"ticket {ticket_no} in status {view.ticket.status} has no deadline "
                    f"{deadline or ''} to extend".replace("  ", " "),
                    code="no_deadline",
                    params={"status": view.ticket.status},
                )
            if view.ticket.status not in OPEN_STATUSES:
                raise Conflict(
                    f"ticket {ticket_no} is {view.ticket.status}",
                    code="ticket_done",
                    params={"status": view.ticket.status},
                )
            if any(e.status == "requested" for e in view.extensions):
                raise Conflict(
                    f"ticket {ticket_no} already has an extension request waiting for the bureau",
                    code="extension_pending",
                )
            if new_due_at <= in_force[name]:
                raise InvalidInput(
                    "the new date must be after the deadline in force "
                    f"({in_force[name]:%Y-%m-%d %H:%M})",
                    code="extension_not_later",
                    params={"due": f"{in_force[name].astimezone(self.profile.tz):%Y-%m-%d %H:%M}"},
                )
            extension = TicketExtension(
                ticket_id=view.ticket.id,
                deadline=name,
                previous_due_at=in_force[name],
                requested_due_at=new_due_at,
                reason=reason.strip(),
                status="requested",
                requested_by=actor,
                requested_at=now,
            )
            repo.add(extension)
            await repo.flush()
            self._extension_event(
                repo, view.ticket, "extension_requested", actor, role, now, reason, extension
            )
            await session.commit()
        return await self.get(ticket_no)

    async def decide_extension(
        self,
        ticket_no: str,
        extension_id: int,
        *,
        grant: bool,
        note: str | None,
        role: str,
        actor: str,
        now: datetime,
    ) -> TicketView:
        """The bureau grants or refuses; a grant moves the deadline in force, both are kept."""
        if role not in EXTENSION_DECIDERS:
            raise Forbidden(
                f"role {role} may not decide an extension; the bureau does",
                code="extension_decide_forbidden",
                params={"role": role},
            )
        async with self.sessions() as session:
            repo = TicketRepository(session)
            view = await self._view(repo, ticket_no)
            extension = await repo.extension(view.ticket.id, extension_id)
            if extension is None:
                raise NotFound(
                    f"ticket {ticket_no} has no extension {extension_id}",
                    code="extension_not_found",
                    params={"ticket_no": ticket_no, "extension_id": extension_id},
                )
            status = "granted" if grant else "refused"
            decided = {
                "status": status,
                "decided_by": actor,
                "decided_at": now,
                "decision_note": note,
            }
            if not await repo.decide_extension(extension.id, decided):
                raise Conflict(
                    f"extension {extension_id} was already {extension.status}",
                    code="already_decided",
                    params={"extension_status": extension.status},
                )
            if grant and stage_deadline(self.profile, view.ticket.status) == extension.deadline:
                await repo.set_values(
                    view.ticket.id,
                    {"due_at": extension.requested_due_at, "next_alert_at": now, "updated_at": now},
                )
            self._extension_event(
                repo, view.ticket, f"extension_{status}", actor, role, now, note, extension
            )
            await session.commit()
        return await self.get(ticket_no)

    def _extension_event(
        self,
        repo: TicketRepository,
        ticket: Ticket,
        action: str,
        actor: str,
        role: str,
        now: datetime,
        note: str | None,
        extension: TicketExtension,
    ) -> None:
        data = {
            "extension_id": extension.id,
            "deadline": extension.deadline,
            "previous_due_at": extension.previous_due_at.isoformat(),
            "requested_due_at": extension.requested_due_at.isoformat(),
        }
        repo.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=now,
                actor=actor,
                role=role,
                action=action,
                from_status=ticket.status,
                to_status=ticket.status,
                note=note,
                data=data,
            )
        )
        AuditLog(repo.session).record(
            now, actor, f"ticket.{action}", "ticket", ticket.ticket_no or "", **data
        )
