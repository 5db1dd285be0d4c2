"""Outbound calls through Asterisk (AMI): rating surveys and agents' click-to-call back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ivr.outbound import CallView
from pingjia.api.routing import Api, Call, json_model
from pingjia.api.schemas import CaseNo, Strict
from pingjia.api.views import SERVICES
from pingjia.auth import Principal

api = Api()
TAG = "calls"
CALLERS = frozenset({"agent", "admin"})


class SurveyIn(Strict):
    """Ask Asterisk to call the citizen of a pending case into the rating survey."""

    case_no: str = CaseNo


class CallbackIn(Strict):
    """Ring the agent's extension, then connect the citizen (recorded)."""

    case_no: str = CaseNo
    agent_extension: str = Field(pattern=r"^[0-9]{2,8}$", description="the agent's extension")


class CallQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_no: str = Field(min_length=1, max_length=64, description="the 12345 case number")
    limit: int = Field(50, ge=1, le=500, description="at most this many, newest first")


class CallOut(BaseModel):
    """An outbound call: no phone number, ever."""

    case_no: str
    kind: str = Field(description="survey | callback")
    action_id: str
    status: str = Field(
        description="requested | originated | unknown | answered | failed; `unknown`: sent, "
        "Asterisk has not said whether it places the call (it may: no new call of the case "
        "until it is settled); a call-back's `answered` is the agent's phone"
    )
    reason: str | None
    requested_by: str
    agent_extension: str | None
    dial_status: str | None = Field(
        description="a call-back's citizen leg as the dialplan reports it (Dial()'s DIALSTATUS: "
        "ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL…); null until it is known"
    )
    citizen_reached: bool | None = Field(
        description="whether the citizen answered: a survey once answered, a call-back once its "
        "dial_status is known; false when the call failed; null while not known"
    )
    requested_at: datetime
    updated_at: datetime


class CallList(BaseModel):
    items: list[CallOut]


def call_out(found: CallView) -> CallOut:
    return CallOut(**found.__dict__)


def _who(call: Call[Any, Any]) -> Principal:
    assert call.principal is not None  # every route here is authenticated
    return call.principal


@api.route(
    "POST",
    "/api/v1/calls/survey",
    summary="Place an outbound rating call (电话评价) into the survey flow",
    tag=TAG,
    body=SurveyIn,
    responses={201: CallOut},
    roles=CALLERS,
)
async def request_survey(call: Call[SurveyIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    placed = await services.calls.request_survey(call.body.case_no, _who(call).actor)
    return json_model(call_out(placed), 201)


@api.route(
    "POST",
    "/api/v1/calls/callback",
    summary="Click-to-call back (回访): ring the agent's extension, then the citizen, recorded",
    tag=TAG,
    body=CallbackIn,
    responses={201: CallOut},
    roles=CALLERS,
)
async def request_callback(call: Call[CallbackIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    body = call.body
    placed = await services.calls.request_callback(
        body.case_no, body.agent_extension, _who(call).actor
    )
    return json_model(call_out(placed), 201)


@api.route(
    "GET",
    "/api/v1/calls",
    summary="The outbound calls of a case and what became of them, newest first",
    tag=TAG,
    query=CallQuery,
    responses={200: CallList},
)
async def list_calls(call: Call[BaseModel, CallQuery]) -> web.Response:
    services = call.request.app[SERVICES]
    found = await services.calls.calls_of(call.query.case_no, call.query.limit)
    return json_model(CallList(items=[call_out(c) for c in found]))
