"""Outbound calls through AMI: rating surveys (电话评价) and agents' click-to-call back (回访).

Each request writes a `calls` row first (status `requested`, audit entry), then asks Asterisk
to Originate, and records what came back: `originated` when Asterisk queued it, `answered` or
`failed` (with the reason) from its OriginateResponse. The citizen's number is decrypted here,
only to build the Originate; it is never stored with the call nor returned.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ami import AmiClient, AmiError, OriginateRefused, Outcome, Pending
from ivr.models import OutboundCall
from ivr.storage import CallRepository
from rating.cases.models import Case
from rating.cases.repository import Repository
from rating.errors import Conflict, DomainError, InvalidInput, NotFound
from rating.policy.profile import Profile
from rating.privacy import PhoneVault

log = structlog.get_logger("pingjia.ami")

# deploy/asterisk/extensions.conf and pjsip.conf: the trunk, the agents' endpoints, contexts.
SURVEY_CONTEXT = "pingjia-outbound-survey"
CALLBACK_CONTEXT = "pingjia-callback"
TRUNK_DIAL = "PJSIP/{number}@trunk"
AGENT_DIAL = "PJSIP/agent{extension}"
HOTLINE_CALLER_ID = '"12345" <12345>'
RING_TIMEOUT_MS = 30_000
EXTENSION = re.compile(r"^[0-9]{2,8}$")


class CallsUnavailable(DomainError):
    """No AMI configured: pingjia cannot place calls."""

    code = "ami_not_configured"
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
    requested_at: datetime
    updated_at: datetime


def view(call: OutboundCall, case_no: str) -> CallView:
    return CallView(
        case_no,
        call.kind,
        call.action_id,
        call.status,
        call.reason,
        call.requested_by,
        call.agent_extension,
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
        connect_wait_s: float = 5.0,
        outcome_timeout_s: float = RING_TIMEOUT_MS / 1000 + 30,
    ) -> None:
        self.sessions = sessions
        self.profile = profile
        self.vault = vault
        self.clock = clock
        self.ami = ami
        self.connect_wait_s = connect_wait_s
        self.outcome_timeout_s = outcome_timeout_s
        self._watchers: set[asyncio.Task[None]] = set()

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
            "Channel": TRUNK_DIAL.format(number=phone),
            "Context": SURVEY_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Variable": [f"CASE_NO={case.case_no}"],
            "CallerID": HOTLINE_CALLER_ID,
        }
        return await self._place(case, "survey", fields, actor, None)

    async def request_callback(self, case_no: str, extension: str, actor: str) -> CallView:
        """Ring the agent's extension, then the citizen (recorded by the dialplan)."""
        if not EXTENSION.match(extension):
            raise InvalidInput("agent_extension must be 2 to 8 digits", code="invalid_extension")
        case, phone = await self._case_and_phone(case_no)
        async with self.sessions() as session:
            tickets = await Repository(session).tickets_for_case(case.id)
        ticket_no = next((t.ticket_no for t in reversed(tickets) if t.ticket_no), "")
        variables = [f"CASE_NO={case.case_no}"]
        if ticket_no:
            variables.append(f"TICKET_NO={ticket_no}")
        fields: dict[str, str | list[str]] = {
            "Channel": AGENT_DIAL.format(extension=extension),
            "Context": CALLBACK_CONTEXT,
            "Exten": phone,
            "Priority": "1",
            "Variable": variables,
            # What the agent's phone shows while it rings: the ticket (or case) being called back.
            "CallerID": f'"{ticket_no or case.case_no}" <12345>',
        }
        return await self._place(case, "callback", fields, actor, extension)

    async def calls_of(self, case_no: str, limit: int = 50) -> list[CallView]:
        async with self.sessions() as session:
            calls = await CallRepository(session).for_case(case_no, limit)
        return [view(c, c.case.case_no) for c in calls]

    async def settle(self) -> None:
        """Wait for the outcomes still expected (tests, shutdown)."""
        if self._watchers:
            await asyncio.wait(set(self._watchers))

    async def close(self) -> None:
        for task in list(self._watchers):
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
            raise NotFound(f"no case {case_no}", code="case_not_found")
        if case.phone_enc is None:
            raise InvalidInput(f"case {case_no} has no phone number to call", code="no_phone")
        # A stored number is normalized; digits and a leading + are all a dial string gets.
        return case, self.vault.decrypt(case.phone_enc)

    async def _place(
        self,
        case: Case,
        kind: str,
        fields: dict[str, str | list[str]],
        actor: str,
        extension: str | None,
    ) -> CallView:
        assert self.ami is not None
        action_id = f"pingjia-{kind}-{secrets.token_hex(8)}"
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
            CallRepository(session).add(call)
            Repository(session).audit(
                now, actor, f"call.{kind}.requested", "case", case.case_no, action_id=action_id
            )
            await session.commit()
        try:
            pending = await self.ami.originate(
                {**fields, "ActionID": action_id, "Timeout": str(RING_TIMEOUT_MS)},
                wait_s=self.connect_wait_s,
            )
        except OriginateRefused as exc:
            call.status, call.reason = "failed", f"Asterisk refused: {exc}"
        except AmiError as exc:
            call.status, call.reason = "failed", str(exc)
        else:
            call.status = "originated"
        call.updated_at = await self._record(action_id, case.case_no, call.status, call.reason)
        if call.status == "originated":
            self._watch(pending, case.case_no)
        # What this request did; the outcome comes later (GET /api/v1/calls).
        return view(call, case.case_no)

    def _watch(self, pending: Pending, case_no: str) -> None:
        task = asyncio.create_task(self._outcome(pending, case_no))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _outcome(self, pending: Pending, case_no: str) -> None:
        outcome = await pending.outcome(self.outcome_timeout_s)
        try:
            await self._record_outcome(pending, case_no, outcome)
        except Exception:  # a watcher has nobody to raise to: log it
            log.exception("outcome of an outbound call not recorded", case_no=case_no)

    async def _record_outcome(self, pending: Pending, case_no: str, outcome: Outcome) -> None:
        if outcome.answered:
            await self._record(pending.action_id, case_no, "answered", None, outcome.uniqueid)
        elif outcome.known:
            await self._record(pending.action_id, case_no, "failed", outcome.reason)
        else:  # it may have rung: say so, keep `originated`
            await self._record(pending.action_id, case_no, "originated", outcome.reason)

    async def _record(
        self,
        action_id: str,
        case_no: str,
        status: str,
        reason: str | None,
        uniqueid: str | None = None,
    ) -> datetime:
        now = self.clock()
        async with self.sessions() as session:
            moved = await CallRepository(session).set_status(
                action_id, status, now, reason=reason, uniqueid=uniqueid, unless=_final(status)
            )
            if moved:
                Repository(session).audit(
                    now,
                    "ami",
                    f"call.{status}",
                    "case",
                    case_no,
                    action_id=action_id,
                    reason=reason,
                )
            await session.commit()
        if status == "failed":
            log.warning("outbound call failed", case_no=case_no, action_id=action_id, reason=reason)
        else:
            log.info("outbound call", case_no=case_no, action_id=action_id, status=status)
        return now


def _final(status: str) -> Sequence[str]:
    """States a late report must not overwrite (an outcome can beat the ack's write)."""
    return ("answered", "failed") if status in ("originated", "requested") else ()
