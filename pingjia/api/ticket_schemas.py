"""Bodies of the ticket API (差评工单) and of the 12345 status callback."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from pingjia.api.patterns import PHONE_DESCRIPTION, PHONE_PATTERN, IsoDateTime
from rating.policy.profile import Profile
from rating.tickets.models import Alert, TicketEvent, TicketExtension
from rating.tickets.rules import (
    STATUS_LABELS,
    STATUSES,
    available_actions,
    overdue_days,
    stage_deadline,
)
from rating.tickets.service import TicketView
from rating.words import TICKET_EVENTS

Status = Literal[
    "new", "dispatched", "confirmed", "not_adopted", "rectifying", "rectified", "closed"
]
assert set(STATUSES) == set(get_args(Status))


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TicketQuery(_In):
    status: Status | None = Field(None, description="one status")
    agency: str | None = Field(None, max_length=128, description="responsible agency")
    overdue: bool | None = Field(None, description="true: past the deadline in force")
    due_before: IsoDateTime | None = Field(None, description="deadline in force before this")
    case_no: str | None = Field(None, max_length=64, description="the 12345 case number")
    limit: int = Field(100, ge=1, le=1000, description="at most this many")


class NoteIn(_In):
    """A step that needs nothing but an optional note."""

    note: str | None = Field(None, max_length=2000)


class DispatchIn(NoteIn):
    """转办: to the responsible agency (defaults to the case's agency)."""

    agency: str | None = Field(None, min_length=1, max_length=128)


class NotAdoptIn(NoteIn):
    """核实不予采纳: a false or malicious rating, on evidence."""

    evidence: str = Field(min_length=1, max_length=4000)


class RectifyIn(NoteIn):
    """整改完成: with the written feedback."""

    feedback: str = Field(min_length=1, max_length=4000)


class ExtensionIn(_In):
    """延期: the agency asks for a new date, with a reason."""

    new_due_at: IsoDateTime
    reason: str = Field(min_length=1, max_length=2000)
    deadline: str | None = Field(None, max_length=32, description="default: the one in force")


class TicketUpdateIn(_In):
    """A status update from the 12345 ticket system; `event_id` makes its retries safe."""

    event_id: str = Field(min_length=1, max_length=128)
    action: Literal["dispatch", "confirm", "not_adopt", "start_rectify", "rectify", "close"]
    note: str | None = Field(None, max_length=2000)
    agency: str | None = Field(None, max_length=128)
    evidence: str | None = Field(None, max_length=4000)
    feedback: str | None = Field(None, max_length=4000)


class EventOut(BaseModel):
    at: datetime
    actor: str
    role: str
    action: str
    from_status: str
    to_status: str
    note: str | None
    data: dict[str, Any]


class ExtensionOut(BaseModel):
    id: int
    deadline: str
    previous_due_at: datetime
    requested_due_at: datetime
    reason: str
    status: Literal["requested", "granted", "refused"]
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class UnavailableAction(BaseModel):
    """A step the ticket's status allows that this caller cannot take, and why."""

    action: str
    label: str = Field(description="the step's Chinese name")
    code: str = Field(description="why not, stable: role_not_allowed | not_appealable | …")
    message: str = Field(description="why not, in Chinese")


class TicketDetail(BaseModel):
    ticket_no: str | None
    case_no: str
    status: Status
    status_label: str
    level: int
    label: str
    tags: list[str]
    tag_texts: list[str]
    reason: str | None
    voice_ref: str | None
    voice_url: str | None = Field(
        description="the voice message's audio (GET with the same token), when there is one"
    )
    agency: str | None
    phone: str | None = Field(description="masked")
    verdict: str | None
    feedback: str | None
    deadlines: dict[str, datetime] = Field(description="as set when the ticket was born")
    deadlines_in_force: dict[str, datetime] = Field(description="after granted extensions")
    current_deadline: str | None
    due_at: datetime | None = Field(description="the deadline in force now")
    overdue_days: int
    actions: list[str] = Field(
        description="the steps this caller can take now: the status allows them, the caller's "
        "role may take them, the profile's rules (appeals) permit them"
    )
    unavailable_actions: list[UnavailableAction] = Field(
        description="the steps the status allows that this caller cannot take, with why"
    )
    created_at: datetime
    verified_at: datetime | None
    verified_on_time: bool | None
    closed_at: datetime | None
    transferred_at: datetime | None
    history: list[EventOut]
    extensions: list[ExtensionOut]


class TicketList(BaseModel):
    items: list[TicketDetail]


class AlertOut(BaseModel):
    id: int
    kind: str
    phase: str | None
    ticket_no: str | None
    agency: str | None
    deadline: str | None
    due_at: datetime | None
    message: str
    sms_status: str
    sms_detail: str | None
    created_at: datetime


class AlertList(BaseModel):
    items: list[AlertOut]


class AlertQuery(_In):
    ticket_no: str | None = Field(None, max_length=32)
    since: IsoDateTime | None = None
    limit: int = Field(100, ge=1, le=1000)


class ContactIn(_In):
    """The agency's contact for deadline alerts by SMS."""

    agency: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(
        min_length=3,
        max_length=32,
        description=PHONE_DESCRIPTION,
        json_schema_extra={"pattern": PHONE_PATTERN},  # checked by the domain (invalid_phone)
    )


class ContactOut(BaseModel):
    agency: str
    name: str
    phone: str = Field(description="masked")


def _event(e: TicketEvent) -> EventOut:
    return EventOut(
        at=e.at,
        actor=e.actor,
        role=e.role,
        action=e.action,
        from_status=e.from_status,
        to_status=e.to_status,
        note=e.note,
        data=dict(e.data),
    )


def _extension(e: TicketExtension) -> ExtensionOut:
    return ExtensionOut.model_validate(e, from_attributes=True)


def ticket_detail(profile: Profile, view: TicketView, now: datetime, role: str) -> TicketDetail:
    """A ticket as the API answers it to a caller of this role (its `actions` are the caller's;
    an agency token only ever reads its own agency's tickets)."""
    t = view.ticket
    offers = available_actions(profile, t.status, role, list(t.tags))
    # Shown in the profile's zone, like the deadlines set at birth.
    in_force = {k: v.astimezone(profile.tz) for k, v in view.in_force().items()}
    current = stage_deadline(profile, t.status)
    due = in_force.get(current) if current else None
    return TicketDetail(
        ticket_no=t.ticket_no,
        case_no=view.case_no,
        status=t.status,
        status_label=STATUS_LABELS[t.status],
        level=t.level,
        label=profile.label(t.level),
        tags=list(t.tags),
        tag_texts=[tag.text for code in t.tags if (tag := profile.tag(code)) is not None],
        reason=t.reason,
        voice_ref=t.voice_ref,
        voice_url=f"/api/v1/tickets/{quote(t.ticket_no)}/voice"
        if t.voice_ref and t.ticket_no
        else None,
        agency=t.agency,
        phone=t.phone_masked,
        verdict=t.verdict,
        feedback=t.feedback,
        deadlines={k: datetime.fromisoformat(v) for k, v in t.deadlines.items()},
        deadlines_in_force=in_force,
        current_deadline=current if due else None,
        due_at=due,
        overdue_days=overdue_days(due, now),
        actions=[o.action for o in offers if o.refusal is None],
        unavailable_actions=[
            UnavailableAction(
                action=o.action,
                label=TICKET_EVENTS[o.action],
                code=o.code or "forbidden",
                message=o.refusal,
            )
            for o in offers
            if o.refusal is not None
        ],
        created_at=t.created_at,
        verified_at=t.verified_at,
        verified_on_time=t.verified_on_time,
        closed_at=t.closed_at,
        transferred_at=t.transferred_at,
        history=[_event(e) for e in view.events],
        extensions=[_extension(e) for e in view.extensions],
    )


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)
