"""Outbound calls through AMI: rating surveys (电话评价) and agents' click-to-call back (回访).

Each request checks that AMI is up (retrying the connection at once; `503 ami_unavailable`
otherwise, nothing written) and that no earlier call of the case may still ring the citizen
(`409 call_in_progress`), writes a `calls` row (`requested`, audit entry), then asks Asterisk to
Originate and records what came back (ivr/call_records.py): `originated` when Asterisk queued
it, `failed` when it refused, `unknown` when it has not answered within the ack timeout (a busy
or stalled Asterisk places it later: the late ack and OriginateResponse, matched by ActionID,
settle the row). The citizen's number is decrypted here, only to build the Originate; it is
never stored with the call nor returned.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ami import AmiClient
from ivr.ami_session import AmiUnavailable, OriginateRefused, Pending
from ivr.call_records import IN_FLIGHT, CallRecords
from ivr.dial import DialTemplate
from ivr.models import OutboundCall
from ivr.storage import CallRepository
from rating.access.audit import AuditLog
from rating.cases.models import Case
from rating.cases.repository import Repository
from rating.errors import Conflict, DomainError, InvalidInput, NotFound
from rating.policy.profile import Profile
from rating.privacy import PhoneVault
from rating.tickets.repository import TicketRepository

log = structlog.get_logger("pingjia.ami")

# deploy/asterisk/extensions.conf: the contexts the Originates enter.
SURVEY_CONTEXT = "pingjia-outbound-survey"
CALLBACK_CONTEXT = "pingjia-callback"
OUTBOUND_DIAL = DialTemplate.parse("PJSIP/{number}@trunk", "number", "PINGJIA_OUTBOUND_DIAL")
AGENT_DIAL = DialTemplate.parse("PJSIP/agent{extension}", "extension", "PINGJIA_AGENT_DIAL")
HOTLINE_CALLER_ID = '"12345" <12345>'
RING_TIMEOUT_MS = 30_000
ACK_TIMEOUT_S = 5.0
# How long a call whose fate Asterisk has not told stays in flight: no second call to the
# citizen before (a stalled Asterisk places queued Originates when it resumes).
UNKNOWN_HOLD_S = 600.0
EXTENSION = re.compile(r"^[0-9]{2,8}$")


class CallsUnavailable(DomainError):
    """No AMI configured: pingjia cannot place calls."""

    code = "ami_not_configured"
    status = 503


class AmiDown(DomainError):
    """AMI is configured but not connected (Asterisk down, hung, or refusing the login)."""

    code = "ami_unavailable"
    status = 503


@dataclass(frozen=True)
class CallView:
    """A call as the API shows it: no phone number."""

    case_no: str
    kind: str
    action_id: str
    status: str
    reason: str | None
    requested_by: str
    agent_extension: str | None
    dial_status: str | None
    citizen_reached: bool | None
    requested_at: datetime
    updated_at: datetime


def citizen_reached(call: OutboundCall) -> bool | None:
    """Whether the citizen's phone was answered: a survey's channel is the citizen's, a
    call-back's citizen leg is the dialplan's Dial(); None while not known."""
    if call.status == "failed":
        return False
    if call.kind == "survey":
        return True if call.status == "answered" else None
    if call.dial_status is not None:
        return call.dial_status == "ANSWER"
    return None


def view(call: OutboundCall, case_no: str) -> CallView:
    return CallView(
        case_no,
        call.kind,
        call.action_id,
        call.status,
        call.reason,
        call.requested_by,
        call.agent_extension,
        call.dial_status,
        citizen_reached(call),
        call.requested_at,
        call.updated_at,
    )


class CallDesk:
    """Places outbound calls and keeps their record; built by the composition root."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        profile: Profile,
        vault: PhoneVault,
        clock: Callable[[], datetime],
        ami: AmiClient | None,
        *,
        outbound_dial: DialTemplate = OUTBOUND_DIAL,
        agent_dial: DialTemplate = AGENT_DIAL,
        connect_wait_s: float = 5.0,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        outcome_timeout_s: float = RING_TIMEOUT_MS / 1000 + 30,
        unknown_hold_s: float = UNKNOWN_HOLD_S,
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.vault = vault
        self.clock = clock
        self.ami = ami
        self.outbound_dial = outbound_dial
        self.agent_dial = agent_dial
        self.connect_wait_s = connect_wait_s
        self.ack_timeout_s = ack_timeout_s
        self.outcome_timeout_s = outcome_timeout_s
        self.unknown_hold_s = unknown_hold_s
        self.records = CallRecords(
            sessions, clock, {"survey": outbound_dial, "callback": agent_dial}
        )
        self._placing = asyncio.Lock()  # one in-flight check and row write at a time
        if ami is not None:
            ami.listen(self.records.on_event)

    async def request_survey(self, case_no: str, actor: str) -> CallView:
        """Call the citizen into the `survey` flow (the case must be pending)."""
        if not self.profile.ivr.outbound_survey:
            raise Conflict(
                f"profile {self.profile.name} does not rate by outbound call "
                "(set [ivr] outbound_survey = true)",
                code="outbound_survey_off",
            )
        case, phone = await self._case_and_phone(case_no)
        if case.evaluation is not None and case.evaluation.status != "pending":
            raise Conflict(
                f"case {case_no} is already {case.evaluation.status}", code="already_rated"
            )
        fields: dict[str, str | list[str]] = {
            "Channel": self.outbound_dial.fill(phone),
            "Context": SURVEY_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Variable": [f"CASE_NO={case.case_no}"],
            "CallerID": HOTLINE_CALLER_ID,
        }
        return await self._place(case, "survey", fields, actor, None)

    async def request_callback(self, case_no: str, extension: str, actor: str) -> CallView:
        """Ring the agent's extension, then the citizen (dialled and recorded by the dialplan)."""
        if not EXTENSION.match(extension):
            raise InvalidInput("agent_extension must be 2 to 8 digits", code="invalid_extension")
        case, phone = await self._case_and_phone(case_no)
        async with self.sessions() as session:
            tickets = await TicketRepository(session).tickets_for_case(case.id)
        ticket_no = next((t.ticket_no for t in reversed(tickets) if t.ticket_no), "")
        # PINGJIA_DIAL: the citizen leg, from the same template as the surveys' channel.
        variables = [f"CASE_NO={case.case_no}", f"PINGJIA_DIAL={self.outbound_dial.fill(phone)}"]
        if ticket_no:
            variables.append(f"TICKET_NO={ticket_no}")
        fields: dict[str, str | list[str]] = {
            "Channel": self.agent_dial.fill(extension),
            "Context": CALLBACK_CONTEXT,
            "Exten": phone,  # E.164 with its +: the sample context matches _X. and _+X.
            "Priority": "1",
            "Variable": variables,
            # What the agent's phone shows while it rings: the ticket (or case) being called back.
            "CallerID": f'"{ticket_no or case.case_no}" <12345>',
        }
        return await self._place(case, "callback", fields, actor, extension)

    def ami_state(self) -> str:
        """connected | disconnected | not_configured (for /healthz and /metrics)."""
        return "not_configured" if self.ami is None else self.ami.state

    async def calls_of(self, case_no: str, limit: int = 50) -> list[CallView]:
        async with self.sessions() as session:
            calls = await CallRepository(session).for_case(case_no, limit)
        return [view(c, c.case.case_no) for c in calls]

    async def settle(self) -> None:
        """Wait for the outcomes still expected (tests, shutdown)."""
        await self.records.settle()

    async def close(self) -> None:
        for task in list(self.records.tasks):
            task.cancel()
        await self.settle()
        if self.ami is not None:
            await self.ami.close()

    async def _case_and_phone(self, case_no: str) -> tuple[Case, str]:
        if self.ami is None:
            raise CallsUnavailable("pingjia places calls through Asterisk: set PINGJIA_AMI_URL")
        async with self.sessions() as session:
            case = await Repository(session).case_by_no(case_no)
        if case is None:
            raise NotFound(f"no case {case_no}", code="case_not_found", params={"case_no": case_no})
        if case.phone_enc is None:
            raise InvalidInput(
                f"case {case_no} has no phone number to call",
                code="no_phone",
                params={"case_no": case_no},
            )
        # A stored number is normalized; digits and a leading + are all a dial string gets.
        return case, self.vault.decrypt(case.phone_enc)

    def _down(self) -> AmiDown:
        assert self.ami is not None
        why = self.ami.last_error or f"not connected to Asterisk's AMI at {self.ami.url}"
        return AmiDown(f"Asterisk is not reachable, no call placed: {why}")

    async def _place(
        self,
        case: Case,
        kind: str,
        fields: dict[str, str | list[str]],
        actor: str,
        extension: str | None,
    ) -> CallView:
        assert self.ami is not None
        if not await self.ami.ensure_connected(self.connect_wait_s):
            raise self._down()
        action_id = f"pingjia-{kind}-{secrets.token_hex(8)}"
        async with self._placing:
            now = self.clock()
            call = OutboundCall(
                case_id=case.id,
                kind=kind,
                action_id=action_id,
                status="requested",
                requested_by=actor,
                agent_extension=extension,
                requested_at=now,
                updated_at=now,
            )
            async with self.sessions() as session:
                calls = CallRepository(session)
                busy = await calls.in_flight(
                    case.id, now - timedelta(seconds=self.unknown_hold_s), IN_FLIGHT
                )
                if busy is not None:
                    raise Conflict(
                        f"case {case.case_no} has a {busy.kind} call still {busy.status} "
                        f"({busy.action_id}): Asterisk may be ringing the citizen; try again "
                        "once it has ended",
                        code="call_in_progress",
                    )
                calls.add(call)
                AuditLog(session).record(
                    now, actor, f"call.{kind}.requested", "case", case.case_no, action_id=action_id
                )
                await session.commit()
        self.records.opening(action_id)
        try:
            # PINGJIA_CALL: the dialplan names the call in its UserEvent (call-backs).
            variables = [*fields["Variable"], f"PINGJIA_CALL={action_id}"]
            pending = self.ami.originate(
                {
                    **fields,
                    "Variable": variables,
                    "ActionID": action_id,
                    "Timeout": str(RING_TIMEOUT_MS),
                }
            )
        except AmiUnavailable as exc:  # dropped since the check: nothing was sent
            self.records.opened(action_id)
            await self.records.record(action_id, "failed", f"not sent: {exc}")
            raise self._down() from None
        try:
            call.status, call.reason = await self._acknowledged(pending)
            call.updated_at = await self.records.record(action_id, call.status, call.reason)
        finally:
            self.records.opened(action_id)
        if call.status != "failed":
            self.records.track(self._follow(pending, case.case_no, acked=call.status != "unknown"))
        # What this request did; the outcome comes later (GET /api/v1/calls).
        return view(call, case.case_no)

    async def _acknowledged(self, pending: Pending) -> tuple[str, str | None]:
        """The status the ack gives: originated, failed (refused) or unknown (not yet)."""
        try:
            acked = await pending.wait_ack(self.ack_timeout_s)
        except OriginateRefused as exc:
            return "failed", f"Asterisk refused: {exc}"
        if acked:
            return "originated", None
        return "unknown", (
            f"Asterisk has not acknowledged the Originate within {self.ack_timeout_s:g} s; "
            "it may still place the call: waiting for its report"
        )

    async def _follow(self, pending: Pending, case_no: str, *, acked: bool) -> None:
        """Wait for a late ack and for the report; the report itself is written by the AMI
        listener (CallRecords.on_event), this only moves what nothing else will."""
        assert self.ami is not None
        action_id = pending.action_id
        try:
            if not acked:
                try:
                    acked = await pending.wait_ack(self.unknown_hold_s)
                except OriginateRefused as exc:
                    await self.records.record(action_id, "failed", f"Asterisk refused: {exc}")
                    return
                if not acked:
                    await self.records.record(
                        action_id,
                        "unknown",
                        f"Asterisk never acknowledged the Originate within "
                        f"{self.unknown_hold_s:g} s; check Asterisk before calling again",
                    )
                    return
                if not pending.reported.done():
                    await self.records.record(
                        action_id,
                        "originated",
                        f"Asterisk acknowledged the Originate after the {self.ack_timeout_s:g} s "
                        "wait: it is placing the call",
                    )
            outcome = await pending.outcome(self.outcome_timeout_s)
            if not outcome.known:
                await self.records.record(action_id, "unknown", outcome.reason)
        except Exception:  # a watcher has nobody to raise to: log it
            log.exception("outcome of an outbound call not recorded", case_no=case_no)
        finally:
            self.ami.forget(pending)
