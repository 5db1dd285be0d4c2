"""The ticket workflow's use cases: list, show, transitions, extensions (延期).

Each step is one transaction: the status compare-and-set, the history event, the audit-log
entry, and, for a result (核实, 整改, 办结), the outbox row for the central store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.errors import Conflict, InvalidInput, NotFound
from rating.models import OutboxItem, Ticket
from rating.profile import Profile
from rating.storage import Repository
from rating.ticket_models import SecondRatingInvite, TicketEvent, TicketExtension
from rating.ticket_rules import (
    EXTENSION_DECIDERS,
    EXTENSION_REQUESTERS,
    OPEN_STATUSES,
    RESULT_ACTIONS,
    Forbidden,
    GrantedExtension,
    check_appeal,
    check_transition,
    deadlines_in_force,
    stage_deadline,
    ticket_record,
)
from rating.ticket_storage import TicketFilter, TicketRepository


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


class TicketService:
    """Use cases over the tickets of one profile; built once by the composition root."""

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
            raise NotFound(f"no ticket {ticket_no!r}", code="ticket_not_found")
        return TicketView(
            ticket,
            ticket.case.case_no,
            list(await repo.events(ticket.id)),
            list(await repo.extensions(ticket.id)),
        )

    async def act(
        self, ticket_no: str, action: str, step: Step, *, role: str, actor: str, now: datetime
    ) -> TicketView:
        """Take one transition; 403 for a wrong role, 409 for a wrong status."""
        async with self.sessions() as session:
            repo = TicketRepository(session)
            view = await self._view(repo, ticket_no)
            ticket = view.ticket
            if step.event_ref and await repo.event_by_ref(ticket.id, step.event_ref):
                return view  # a retried callback: already applied
            transition = check_transition(action, ticket.status, role)
            values = self._values(view, action, step, now)
            values["status"] = transition.target
            values["updated_at"] = now
            stage = stage_deadline(self.profile, transition.target)
            values["due_at"] = view.in_force().get(stage) if stage else None
            values["next_alert_at"] = now if transition.target in OPEN_STATUSES else None
            if not await repo.move(ticket.id, ticket.status, values):
                raise Conflict(
                    f"ticket {ticket_no} was changed by someone else; reload it",
                    code="ticket_changed",
                )
            event = TicketEvent(
                ticket_id=ticket.id,
                at=now,
                actor=actor,
                role=role,
                action=action,
                from_status=ticket.status,
                to_status=transition.target,
                note=step.note,
                data={k: v for k, v in self._event_data(step).items() if v is not None},
                event_ref=step.event_ref,
            )
            repo.add(event)
            await repo.flush()
            Repository(session).audit(
                now,
                actor,
                f"ticket.{action}",
                "ticket",
                ticket_no,
                from_status=ticket.status,
                to_status=transition.target,
                note=step.note,
            )
            if action in RESULT_ACTIONS:
                self._result_to_outbox(repo, view, transition.target, values, step, event, now)
            if action == "close" and self.profile.second_rating and ticket.verdict == "confirmed":
                repo.add(
                    SecondRatingInvite(
                        ticket_id=ticket.id,
                        evaluation_id=ticket.evaluation_id,
                        due_at=now,
                        created_at=now,
                    )
                )
            await session.commit()
        return await self.get(ticket_no)

    def _values(self, view: TicketView, action: str, step: Step, now: datetime) -> dict[str, Any]:
        """The column changes a step brings, after checking the fields it needs."""
        ticket = view.ticket
        if action == "dispatch":
            agency = (step.agency or ticket.agency or "").strip()
            if not agency:
                raise InvalidInput("dispatch needs the responsible agency", code="agency_required")
            return {"agency": agency}
        if action in ("confirm", "not_adopt"):
            if action == "not_adopt":
                if not (step.evidence or "").strip():
                    raise InvalidInput(
                        "a rating is not adopted only on evidence; send `evidence`",
                        code="evidence_required",
                    )
                check_appeal(self.profile, list(ticket.tags))
            stage = stage_deadline(self.profile, ticket.status)
            due = view.in_force().get(stage) if stage else None
            return {
                "verdict": "confirmed" if action == "confirm" else "not_adopted",
                "verified_at": now,
                "verified_on_time": due is None or now <= due,
            }
        if action == "rectify":
            if not (step.feedback or "").strip():
                raise InvalidInput(
                    "rectification needs the written feedback (整改反馈)", code="feedback_required"
                )
            return {"feedback": step.feedback}
        if action == "close":
            return {"closed_at": now}
        return {}

    @staticmethod
    def _event_data(step: Step) -> dict[str, Any]:
        return {"agency": step.agency, "evidence": step.evidence, "feedback": step.feedback}

    def _result_to_outbox(
        self,
        repo: TicketRepository,
        view: TicketView,
        status: str,
        values: dict[str, Any],
        step: Step,
        event: TicketEvent,
        now: datetime,
    ) -> None:
        ticket = view.ticket
        payload = ticket_record(
            self.profile,
            case_no=view.case_no,
            ticket_no=ticket.ticket_no or "",
            status=status,
            verdict=values.get("verdict", ticket.verdict),
            level=ticket.level,
            agency=values.get("agency", ticket.agency),
            note=step.note,
            feedback=values.get("feedback", ticket.feedback),
            at=now,
        )
        repo.add(
            OutboxItem(
                topic="central.ticket",
                # The same key as the rating's row: the store hears the rating before its result.
                ordering_key=f"evaluation:{ticket.evaluation_id}",
                idempotency_key=f"ticket-{ticket.id}-{event.id}",
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
        )

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
            raise Forbidden(f"role {role} may not ask for an extension; agencies do")
        if not reason.strip():
            raise InvalidInput("an extension needs a reason", code="reason_required")
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
                )
            if view.ticket.status not in OPEN_STATUSES:
                raise Conflict(f"ticket {ticket_no} is {view.ticket.status}", code="ticket_done")
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
            raise Forbidden(f"role {role} may not decide an extension; the bureau does")
        async with self.sessions() as session:
            repo = TicketRepository(session)
            view = await self._view(repo, ticket_no)
            extension = await repo.extension(view.ticket.id, extension_id)
            if extension is None:
                raise NotFound(f"ticket {ticket_no} has no extension {extension_id}")
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
        Repository(repo.session).audit(
            now, actor, f"ticket.{action}", "ticket", ticket.ticket_no or "", **data
        )
