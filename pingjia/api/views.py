"""The rating API of SPEC.md section 4: services, evaluations, ratings."""

from __future__ import annotations

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from pingjia.api.errors import ApiError
from pingjia.api.routing import Api, Call, json_model
from pingjia.api.schemas import (
    EvaluationList,
    EvaluationOut,
    RatingIn,
    RatingResult,
    ServiceIn,
    evaluation_out,
    ticket_out,
)
from pingjia.composition import Services
from rating.cases.registration import ServiceRecord
from rating.ratings.requests import RatingRequest
from rating.words import CHANNELS, EVALUATION_STATUSES

log = structlog.get_logger("pingjia.api")
api = Api()
SERVICES = web.AppKey("services", Services)
WRITERS = frozenset({"agent", "admin"})


class EvaluationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_no: str | None = Field(None, max_length=64, description="the 12345 case number")
    limit: int = Field(100, ge=1, le=1000, description="at most this many, newest first")


@api.route(
    "POST",
    "/api/v1/services",
    summary="Register a completed case; the same case_no again answers 200, same evaluation",
    tag="evaluations",
    body=ServiceIn,
    responses={201: EvaluationOut, 200: EvaluationOut},
    roles=WRITERS,
)
async def register_service(call: Call[ServiceIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    body = call.body
    evaluation, created = await services.ratings.register(
        ServiceRecord(
            case_no=body.case_no,
            kind=body.kind,
            phone=body.phone,
            completed_at=body.completed_at,
            agency=body.agency,
            agent_id=body.agent_id,
            matter=body.matter,
        ),
        actor=call.principal.actor if call.principal else "anonymous",
        now=services.clock(),
    )
    if created:
        services.metrics.evaluations.inc()
        log.info("evaluation opened", case_no=body.case_no, phone=evaluation.case.phone_masked)
    return json_model(evaluation_out(services.profile, evaluation), 201 if created else 200)


@api.route(
    "GET",
    "/api/v1/evaluations",
    summary="Evaluations, newest first, optionally of one case",
    tag="evaluations",
    query=EvaluationQuery,
    responses={200: EvaluationList},
)
async def list_evaluations(call: Call[BaseModel, EvaluationQuery]) -> web.Response:
    services = call.request.app[SERVICES]
    found = await services.ratings.evaluations(call.query.case_no, call.query.limit)
    items = [evaluation_out(services.profile, e) for e in found]
    return json_model(EvaluationList(items=items))


@api.route(
    "POST",
    "/api/v1/ratings",
    summary="Record a rating taken on another channel; a second one for the case answers 409",
    tag="ratings",
    body=RatingIn,
    responses={201: RatingResult, 200: RatingResult},
    roles=WRITERS,
    idempotent=True,
)
async def record_rating(call: Call[RatingIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    body = call.body
    key = call.request.headers.get("Idempotency-Key")  # checked and claimed by the route
    outcome = await services.ratings.rate(
        RatingRequest(
            case_no=body.case_no,
            level=body.level,
            channel=body.channel,
            tags=body.tags,
            reason=body.reason,
            source_ref=f"api:{key}" if key else None,
        ),
        actor=call.principal.actor if call.principal else "anonymous",
        now=services.clock(),
    )
    if not outcome.replayed:
        services.metrics.ratings.labels(body.channel, str(body.level), str(outcome.adopted)).inc()
        if outcome.ticket is not None:
            services.metrics.tickets.inc()
    evaluation = evaluation_out(services.profile, outcome.evaluation)
    if not outcome.adopted:
        adopted = evaluation.rating
        already = (
            f"（{adopted.label}，{CHANNELS.get(adopted.channel, adopted.channel)}）"
            if adopted
            else ""
        )
        raise ApiError(
            409,
            "already_rated",
            f"诉求 {body.case_no} 已{EVALUATION_STATUSES.get(evaluation.status, evaluation.status)}"
            f"{already}：本次评价已记录，但不采用。",
        )
    log.info(
        "rating adopted",
        case_no=body.case_no,
        level=body.level,
        channel=body.channel,
        ticket=outcome.ticket.ticket_no if outcome.ticket else None,
    )
    result = RatingResult(
        adopted=True,
        evaluation=evaluation,
        ticket=ticket_out(outcome.ticket, body.case_no) if outcome.ticket else None,
    )
    return json_model(result, 200 if outcome.replayed else 201)
