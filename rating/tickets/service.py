"""The ticket workflow's transitions (rating/tickets/rules.py has the table).

Each step is one transaction: the status compare-and-set, the history event, the audit-log
entry, and, for a result (核实, 整改, 办结), the outbox row for the central store. Reads are in
rating/tickets/views.py, extensions (延期) in rating/tickets/extensions.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rating.access.audit import AuditLog
from rating.errors import Conflict, InvalidInput
from rating.outbox.central import central_item, new_key
from rating.tickets.extensions import TicketExtensions
from rating.tickets.models import SecondRatingInvite, TicketEvent
from rating.tickets.repository import TicketRepository
from rating.tickets.rules import (
    OPEN_STATUSES,
    RESULT_ACTIONS,
    check_appeal,
    check_transition,
    stage_deadline,
    ticket_record,
)
from rating.tickets.views import Step, TicketView

__all__ = ["Step", "TicketService", "TicketView"]  # callers import these from here


class TicketService(TicketExtensions):
    """Use cases over the tickets of one profile; built once by the composition root.
    Reads come from TicketReader, extensions (延期) from TicketExtensions."""

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
                    params={"ticket_no": ticket_no},
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
            AuditLog(session).record(
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
                self._result_to_outbox(repo, view, transition.target, values, step, now)
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
        key = new_key("ticket")
        repo.add(central_item("central.ticket", ticket.evaluation_id, key, payload, now))
