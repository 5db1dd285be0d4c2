"""Dead letters over HTTP (bureau, admin): what `pingjia outbox dead` lists and `retry` re-arms.

Both go through `DeadLetterDesk` (rating/dead_letters/desk.py), as the CLI does. A retry that
names items answers 200 with what it re-armed and what it refused, or `409 nothing_rearmed` when it
re-armed none of them (the refusals in `details`); `{"all": true}` with nothing dead is a 200
with a count of 0, as `pingjia outbox retry --all` exits 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

from pingjia.api.errors import ApiError
from pingjia.api.patterns import INTEGRAL
from pingjia.api.routing import MAX_PATH_ID, Api, Call, json_model
from pingjia.api.views import SERVICES
from rating.dead_letters.desk import OUTBOX, DeadLetter, Refused
from rating.words import DEAD_LETTER_REFUSALS

api = Api()
TAG = "dead-letters"
OPERATORS = frozenset({"bureau", "admin"})
# Ids, and ticket numbers, in one retry: 500 of each (the document's maxItems; a bound on the
# sum would be a rule JSON Schema cannot state); `all` re-arms any number.
MAX_NAMED = 500
MAX_LIST = 500

# An outbox row's id: within every integer column (beyond is no row, and no database's int).
OutboxId = Annotated[int, Field(ge=1, le=MAX_PATH_ID), INTEGRAL, Strict()]
TicketNo = Annotated[str, Field(min_length=1, max_length=32)]


class DeadLetterQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=MAX_LIST, description="at most this many, newest death first")


class DeadLetterOut(BaseModel):
    kind: str = Field(description="outbox (a post to the central store) or ticket (to 12345)")
    ref: str = Field(description="the outbox row's id or the ticket number, as retry takes it")
    topic: str
    key: str = Field(description="the Idempotency-Key it goes with, the same on every try")
    attempts: int
    dead_at: datetime | None = Field(description="null: a ticket whose alert is missing")
    last_error: str | None


class DeadLetterListOut(BaseModel):
    """The newest dead letters, and how many there are of each kind in all."""

    items: list[DeadLetterOut]
    outbox_total: int
    ticket_total: int
    total: int


class RetryIn(BaseModel):
    """Name what to re-arm: outbox ids and/or ticket numbers, or `all` alone."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            # The rule one_selector applies, for the document.
            "oneOf": [
                {
                    "required": ["all"],
                    "properties": {
                        "all": {"const": True},
                        "outbox_ids": {"maxItems": 0},
                        "ticket_nos": {"maxItems": 0},
                    },
                },
                {
                    "properties": {"all": {"const": False}},
                    "anyOf": [
                        {"required": ["outbox_ids"], "properties": {"outbox_ids": {"minItems": 1}}},
                        {"required": ["ticket_nos"], "properties": {"ticket_nos": {"minItems": 1}}},
                    ],
                },
            ]
        },
    )

    outbox_ids: list[OutboxId] = Field(default_factory=list, max_length=MAX_NAMED)
    ticket_nos: list[TicketNo] = Field(default_factory=list, max_length=MAX_NAMED)
    everything: bool = Field(False, alias="all", strict=True, description="every dead letter")

    @model_validator(mode="after")
    def one_selector(self) -> RetryIn:
        named = len(self.outbox_ids) + len(self.ticket_nos)
        # Each refusal's type names its Chinese message (rating/words.py INPUT_PROBLEMS).
        if self.everything and named:
            raise PydanticCustomError(
                "retry_all_alone", "give `all` alone, without outbox_ids or ticket_nos"
            )
        if not self.everything and not named:
            raise PydanticCustomError(
                "retry_nothing_named", "name outbox_ids and/or ticket_nos, or give all: true"
            )
        return self


class RefusedOut(BaseModel):
    kind: str
    ref: str
    reason: str = Field(description="not found | not dead-lettered: already sent | …")
    message: str = Field(description="the reason in Chinese, for people")


class RetryOut(BaseModel):
    """What one retry re-armed (due now, tries from zero) and what it left as it was."""

    rearmed: int
    outbox_ids: list[int]
    ticket_nos: list[str]
    refused: list[RefusedOut]


def letter_out(item: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        kind=item.kind,
        ref=item.ref,
        topic=item.topic,
        key=item.key,
        attempts=item.attempts,
        dead_at=item.dead_at,
        last_error=item.last_error,
    )


def _refusal_detail(refused: Refused) -> dict[str, Any]:
    field = "outbox_ids" if refused.kind == OUTBOX else "ticket_nos"
    return {
        "type": refused.reason,
        "field": field,
        "ref": refused.ref,
        "message": DEAD_LETTER_REFUSALS.get(refused.reason, refused.reason),
    }


@api.route(
    "GET",
    "/api/v1/dead-letters",
    summary="Outbox rows and ticket transfers the bridge gave up on, newest death first",
    tag=TAG,
    query=DeadLetterQuery,
    responses={200: DeadLetterListOut},
    roles=OPERATORS,
)
async def list_dead_letters(call: Call[BaseModel, DeadLetterQuery]) -> web.Response:
    found = await call.request.app[SERVICES].dead_letters.dead(call.query.limit)
    return json_model(
        DeadLetterListOut(
            items=[letter_out(item) for item in found.items],
            outbox_total=found.outbox_total,
            ticket_total=found.ticket_total,
            total=found.total,
        )
    )


@api.route(
    "POST",
    "/api/v1/dead-letters/retry",
    summary="Re-arm dead letters (tries from zero, due now); 409 when none named could be",
    tag=TAG,
    body=RetryIn,
    responses={200: RetryOut},
    roles=OPERATORS,
)
async def retry_dead_letters(call: Call[RetryIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    body = call.body
    assert call.principal is not None  # the route is authenticated
    done = await services.dead_letters.rearm(
        ids=body.outbox_ids,
        ticket_nos=body.ticket_nos,
        everything=body.everything,
        actor=call.principal.actor,
        now=services.clock(),
    )
    if done.count == 0 and done.refused:
        raise ApiError(
            409,
            "nothing_rearmed",
            "所列项目都不在死信队列中，没有重新发送任何项目。",
            [_refusal_detail(r) for r in done.refused],
        )
    return json_model(
        RetryOut(
            rearmed=done.count,
            outbox_ids=[int(r.ref) for r in done.outbox],
            ticket_nos=[r.ref for r in done.tickets],
            refused=[
                RefusedOut(
                    kind=r.kind,
                    ref=r.ref,
                    reason=r.reason,
                    message=DEAD_LETTER_REFUSALS.get(r.reason, r.reason),
                )
                for r in done.refused
            ],
        )
    )
