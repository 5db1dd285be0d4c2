"""The ticket API (差评工单) for the console, and the 12345 system's status callback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from console.voice import audio_file
from pingjia.api.routing import Api, Call, json_model, path_id
from pingjia.api.ticket_schemas import (
    AlertList,
    AlertQuery,
    ContactIn,
    ContactOut,
    DispatchIn,
    ExtensionIn,
    NotAdoptIn,
    NoteIn,
    RectifyIn,
    TicketDetail,
    TicketList,
    TicketQuery,
    TicketUpdateIn,
    alert_out,
    ticket_detail,
)
from pingjia.api.views import SERVICES
from pingjia.auth import Principal
from pingjia.recordings import recording_folder
from rating.errors import NotFound
from rating.tickets.repository import TicketFilter
from rating.tickets.rules import TRANSITIONS, Forbidden
from rating.tickets.service import Step

api = Api()
TAG = "tickets"
# The 12345 system calls back with a token of this role (`pingjia token create --role admin`).
TICKET_SYSTEM_ROLES = frozenset({"admin"})


def _who(call: Call[Any, Any]) -> Principal:
    assert call.principal is not None  # every route here is authenticated
    return call.principal


def _own_agency(who: Principal) -> str | None:
    """None for roles that see every ticket; an agency token's agency, which it must have."""
    if who.role != "agency":
        return None
    if not who.agency:
        raise Forbidden(
            f"agency token {who.name!r} names no agency; create a new one with "
            "`pingjia token create --role agency --name NAME --agency AGENCY`",
            code="agency_token_without_agency",
        )
    return who.agency


async def _check_visible(call: Call[Any, Any], ticket_no: str) -> None:
    """An agency token sees only its own agency's tickets; another's is 404, as if absent."""
    own = _own_agency(_who(call))
    if own is None:
        return
    view = await call.request.app[SERVICES].tickets.get(ticket_no)
    if view.ticket.agency != own:
        raise NotFound(
            f"no ticket {ticket_no!r}", code="ticket_not_found", params={"ticket_no": ticket_no}
        )


async def _respond(call: Call[Any, Any], ticket_no: str, status: int = 200) -> web.Response:
    services = call.request.app[SERVICES]
    view = await services.tickets.get(ticket_no)
    role = _who(call).role
    return json_model(ticket_detail(services.profile, view, services.clock(), role), status)


@api.route(
    "GET",
    "/api/v1/tickets",
    summary="Tickets, soonest deadline first; filter by status, agency, overdue, due_before, case",
    tag=TAG,
    query=TicketQuery,
    responses={200: TicketList},
)
async def list_tickets(call: Call[BaseModel, TicketQuery]) -> web.Response:
    services = call.request.app[SERVICES]
    q = call.query
    now = services.clock()
    own = _own_agency(_who(call))
    if own is not None and q.agency not in (None, own):
        return json_model(TicketList(items=[]))  # another agency's tickets: none to see
    views = await services.tickets.list(
        TicketFilter(q.status, own or q.agency, q.overdue, q.due_before, q.case_no, q.limit), now
    )
    role = _who(call).role
    items = [ticket_detail(services.profile, v, now, role) for v in views]
    return json_model(TicketList(items=items))


@api.route(
    "GET",
    "/api/v1/tickets/{ticket_no}",
    summary="One ticket with its deadlines, history and extensions",
    tag=TAG,
    responses={200: TicketDetail},
)
async def get_ticket(call: Call[BaseModel, BaseModel]) -> web.Response:
    await _check_visible(call, call.request.match_info["ticket_no"])
    return await _respond(call, call.request.match_info["ticket_no"])


@api.route(
    "GET",
    "/api/v1/tickets/{ticket_no}/voice",
    summary="The caller's voice message (语音留言), from the shared recordings folder; Range works",
    tag=TAG,
    media={200: "audio/wav"},
)
async def ticket_voice(call: Call[BaseModel, BaseModel]) -> web.StreamResponse:
    services = call.request.app[SERVICES]
    ticket_no = call.request.match_info["ticket_no"]
    await _check_visible(call, ticket_no)
    view = await services.tickets.get(ticket_no)
    if not view.ticket.voice_ref:
        raise NotFound(f"工单 {ticket_no} 没有语音留言。", code="voice_not_found")
    settings = services.settings
    path = recording_folder(settings.recordings_dir, settings.recordings_mount).locate(
        view.ticket.voice_ref
    )
    return audio_file(path)


def _transition_route(action: str, body: type[NoteIn], path: str) -> None:
    transition = TRANSITIONS[action]

    async def handler(call: Call[NoteIn, BaseModel]) -> web.Response:
        services = call.request.app[SERVICES]
        who = _who(call)
        ticket_no = call.request.match_info["ticket_no"]
        step = Step(
            note=call.body.note,
            agency=getattr(call.body, "agency", None),
            evidence=getattr(call.body, "evidence", None),
            feedback=getattr(call.body, "feedback", None),
        )
        await _check_visible(call, ticket_no)
        await services.tickets.act(
            ticket_no, action, step, role=who.role, actor=who.actor, now=services.clock()
        )
        return await _respond(call, ticket_no)

    handler.__name__ = f"ticket_{action}"
    api.route(
        "POST",
        f"/api/v1/tickets/{{ticket_no}}/{path}",
        summary=f"{transition.title}: {'/'.join(sorted(transition.sources))} → {transition.target}",
        tag=TAG,
        body=body,
        responses={200: TicketDetail},
        roles=transition.roles,
    )(handler)


_transition_route("dispatch", DispatchIn, "dispatch")
_transition_route("confirm", NoteIn, "confirm")
_transition_route("not_adopt", NotAdoptIn, "not-adopt")
_transition_route("start_rectify", NoteIn, "start-rectify")
_transition_route("rectify", RectifyIn, "rectify")
_transition_route("close", NoteIn, "close")


@api.route(
    "POST",
    "/api/v1/tickets/{ticket_no}/extensions",
    summary="延期: an agency asks for a new date with a reason; the bureau decides",
    tag=TAG,
    body=ExtensionIn,
    responses={201: TicketDetail},
    roles=frozenset({"agency", "admin"}),
)
async def request_extension(call: Call[ExtensionIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    who = _who(call)
    ticket_no = call.request.match_info["ticket_no"]
    await _check_visible(call, ticket_no)
    await services.tickets.request_extension(
        ticket_no,
        new_due_at=call.body.new_due_at,
        reason=call.body.reason,
        deadline=call.body.deadline,
        role=who.role,
        actor=who.actor,
        now=services.clock(),
    )
    return await _respond(call, ticket_no, 201)


def _decision_route(grant: bool) -> Callable[[Call[NoteIn, BaseModel]], Awaitable[web.Response]]:
    async def handler(call: Call[NoteIn, BaseModel]) -> web.Response:
        services = call.request.app[SERVICES]
        who = _who(call)
        ticket_no = call.request.match_info["ticket_no"]
        extension_id = path_id(call.request.match_info["extension_id"])
        if extension_id is None:  # not a number, or larger than any id: no such extension
            raise web.HTTPNotFound()
        await services.tickets.decide_extension(
            ticket_no,
            extension_id,
            grant=grant,
            note=call.body.note,
            role=who.role,
            actor=who.actor,
            now=services.clock(),
        )
        return await _respond(call, ticket_no)

    verb = "grant" if grant else "refuse"
    handler.__name__ = f"extension_{verb}"
    api.route(
        "POST",
        f"/api/v1/tickets/{{ticket_no}}/extensions/{{extension_id}}/{verb}",
        summary=f"The bureau {'grants' if grant else 'refuses'} an extension",
        tag=TAG,
        body=NoteIn,
        responses={200: TicketDetail},
        roles=frozenset({"bureau", "admin"}),
    )(handler)
    return handler


_decision_route(True)
_decision_route(False)


@api.route(
    "POST",
    "/api/v1/bridge/tickets/{ticket_no}/updates",
    summary="A status update from the 12345 ticket system; a repeated event_id is applied once",
    tag="bridge",
    body=TicketUpdateIn,
    responses={200: TicketDetail},
    roles=TICKET_SYSTEM_ROLES,
)
async def ticket_system_update(call: Call[TicketUpdateIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    who = _who(call)
    body = call.body
    ticket_no = call.request.match_info["ticket_no"]
    step = Step(body.note, body.agency, body.evidence, body.feedback, event_ref=body.event_id)
    await services.tickets.act(
        ticket_no,
        body.action,
        step,
        role=who.role,
        actor=f"ticket-system:{who.name}",
        now=services.clock(),
    )
    return await _respond(call, ticket_no)


@api.route(
    "GET",
    "/api/v1/alerts",
    summary="Console alerts: deadlines before, at and after, dead letters; newest first",
    tag=TAG,
    query=AlertQuery,
    responses={200: AlertList},
)
async def list_alerts(call: Call[BaseModel, AlertQuery]) -> web.Response:
    services = call.request.app[SERVICES]
    q = call.query
    found = await services.alerts.list(q.ticket_no, q.since, q.limit, _own_agency(_who(call)))
    return json_model(AlertList(items=[alert_out(a) for a in found]))


@api.route(
    "PUT",
    "/api/v1/agency-contacts",
    summary="Set who at an agency gets deadline alerts by SMS",
    tag=TAG,
    body=ContactIn,
    responses={200: ContactOut},
    roles=frozenset({"bureau", "admin"}),
)
async def set_contact(call: Call[ContactIn, BaseModel]) -> web.Response:
    services = call.request.app[SERVICES]
    body = call.body
    masked = await services.alerts.set_contact(
        body.agency, body.name, body.phone, actor=_who(call).actor, now=services.clock()
    )
    return json_model(ContactOut(agency=body.agency, name=body.name, phone=masked))
