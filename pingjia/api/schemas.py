"""Request and response bodies of the HTTP API; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pingjia.api.patterns import PHONE_DESCRIPTION, PHONE_PATTERN, IsoDateTime, JsonInt
from rating.cases.models import Evaluation, Rating
from rating.policy.profile import Profile
from rating.tickets.models import Ticket

CaseNo = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ServiceIn(Strict):
    """A completed 12345 case to be rated."""

    case_no: str = CaseNo
    kind: Literal["consultation", "complaint"]
    phone: str = Field(
        min_length=3,
        max_length=32,
        description="the citizen's number: " + PHONE_DESCRIPTION,
        json_schema_extra={"pattern": PHONE_PATTERN},  # checked by the domain (invalid_phone)
    )
    completed_at: IsoDateTime = Field(
        description="ISO 8601 with a UTC offset; at most 5 minutes after the server's clock "
        "(later: 422 completed_in_future, a bound no schema can state)"
    )
    agency: str | None = Field(None, max_length=128)
    agent_id: str | None = Field(None, max_length=64)
    matter: str | None = Field(None, max_length=256)


class RatingIn(Strict):
    """A rating taken on another channel (an agent noting a verbal rating, a window device)."""

    case_no: str = CaseNo
    level: JsonInt = Field(ge=1, le=5, description="1 非常满意 … 5 非常不满意")
    channel: Literal["ivr", "sms", "web", "api"] = "api"
    tags: list[str] = Field(default_factory=list, max_length=20)
    reason: str | None = Field(None, max_length=500)


class RatingOut(BaseModel):
    id: int
    level: int
    label: str
    score: float
    channel: str = Field(
        description="ivr (the citizen's own call) | survey (an outbound rating call pingjia "
        "placed, 电话回访; 电话 for the central store like ivr) | sms | web | system | api"
    )
    tags: list[str]
    tag_texts: list[str]
    reason: str | None
    voice_ref: str | None
    rated_at: datetime
    adopted: bool
    attempt: int


class EvaluationOut(BaseModel):
    id: int
    case_no: str
    kind: str
    status: Literal["pending", "rated", "defaulted"]
    profile: str
    phone: str | None = Field(description="masked")
    agency: str | None
    agent_id: str | None
    matter: str | None
    completed_at: datetime
    default_due_at: datetime
    reminder_due_at: datetime | None
    rating: RatingOut | None = Field(description="the adopted rating")
    attempts: list[RatingOut] = Field(description="ratings recorded but not applied")


class EvaluationList(BaseModel):
    items: list[EvaluationOut]


class TicketOut(BaseModel):
    ticket_no: str | None
    case_no: str
    status: str
    level: int
    agency: str | None
    deadlines: dict[str, datetime]


class RatingResult(BaseModel):
    adopted: bool
    evaluation: EvaluationOut
    ticket: TicketOut | None


class ErrorDetail(BaseModel):
    """One thing wrong with the request: `type` and `loc` for programs, `message` for people."""

    type: str | None = Field(
        None,
        description="what is wrong: pydantic's error type (missing, string_too_long, "
        "literal_error, …) or one of ours (time_not_text, retry_all_alone, …)",
    )
    loc: list[str | int] | None = Field(None, description="where: the path to the field")
    field: str = Field(description="`loc` joined with dots; empty for the body as a whole")
    ref: str | None = Field(None, description="the item a refusal is about (dead letters)")
    message: str = Field(description="in Chinese, for people (rating/words.py)")


class ErrorBody(BaseModel):
    code: str = Field(description="stable, for programs")
    message: str = Field(description="in Chinese, for people")
    details: list[ErrorDetail] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    state: bool
    # Outbound calls: AMI configured and logged in; "not_configured" is healthy (no calls).
    ami: Literal["connected", "disconnected", "not_configured"]
    profile: str


def rating_out(profile: Profile, rating: Rating) -> RatingOut:
    return RatingOut(
        id=rating.id,
        level=rating.level,
        label=profile.label(rating.level),
        score=rating.score,
        channel=rating.channel,
        tags=list(rating.tags),
        tag_texts=[t.text for code in rating.tags if (t := profile.tag(code)) is not None],
        reason=rating.reason,
        voice_ref=rating.voice_ref,
        rated_at=rating.rated_at,
        adopted=rating.adopted,
        attempt=rating.attempt,
    )


def evaluation_out(profile: Profile, evaluation: Evaluation) -> EvaluationOut:
    adopted = [r for r in evaluation.ratings if r.adopted]
    others = [r for r in evaluation.ratings if not r.adopted]
    case = evaluation.case
    return EvaluationOut(
        id=evaluation.id,
        case_no=case.case_no,
        kind=case.kind,
        status=evaluation.status,
        profile=evaluation.profile,
        phone=case.phone_masked,
        agency=case.agency,
        agent_id=case.agent_id,
        matter=case.matter,
        completed_at=case.completed_at,
        default_due_at=evaluation.default_due_at,
        reminder_due_at=evaluation.reminder_due_at,
        rating=rating_out(profile, adopted[0]) if adopted else None,
        attempts=[rating_out(profile, r) for r in others],
    )


def ticket_out(ticket: Ticket, case_no: str) -> TicketOut:
    return TicketOut(
        ticket_no=ticket.ticket_no,
        case_no=case_no,
        status=ticket.status,
        level=ticket.level,
        agency=ticket.agency,
        deadlines={name: datetime.fromisoformat(when) for name, when in ticket.deadlines.items()},
    )
