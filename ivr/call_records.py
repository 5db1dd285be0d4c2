"""What became of an outbound call, written to its `calls` row as Asterisk tells it.

Statuses: `requested` (row written, Originate not sent or not answered yet), `originated`
(Asterisk queued it), `unknown` (sent, but Asterisk has not said whether it will place it, or
never reported its end: it may still ring the citizen), `answered` / `failed` (its
OriginateResponse, or its refusal). A late report always wins over `unknown`; nothing but a
report or a refusal overwrites `answered` or `failed`.

A call-back's `answered` is the agent's phone; the dialplan (deploy/asterisk/extensions.conf,
hang-up handler `pingjia-callback-report`) then sends `UserEvent: PingjiaCallback` with the
citizen leg's `DIALSTATUS`, kept as `dial_status` (`ANSWER`: the citizen was reached).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.ami_session import Outcome, outcome_of
from ivr.dial import DialTemplate
from ivr.storage import CallRepository
from rating.access.audit import AuditLog

log = structlog.get_logger("pingjia.ami")

ACTION_ID = re.compile(r"^pingjia-(survey|callback)-[0-9a-f]{16}$")
CALLBACK_EVENT = "PingjiaCallback"
# Dial()'s DIALSTATUS values (app_dial.c); anything else is kept as Asterisk sent it.
DIAL_STATUSES = frozenset(
    "ANSWER BUSY NOANSWER CANCEL CONGESTION CHANUNAVAIL DONTCALL TORTURE INVALIDARGS".split()
)
IN_FLIGHT = ("requested", "originated", "unknown")


def final_states(status: str) -> Sequence[str]:
    """States a report must not overwrite (an outcome can beat the ack's write)."""
    return ("answered", "failed") if status in IN_FLIGHT else ()


class CallRecords:
    """Writes calls' statuses and audit lines; listens to the AMI events that settle them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        dials: dict[str, DialTemplate],
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.dials = dials  # kind -> the template whose failure a Reason 0 points at
        self.tasks: set[asyncio.Task[Any]] = set()
        # Calls whose request is still writing what the ack said: a report that overtakes the
        # ack waits for it, so the audit reads requested → originated → answered.
        self._opening: dict[str, asyncio.Event] = {}

    def opening(self, action_id: str) -> None:
        self._opening[action_id] = asyncio.Event()

    def opened(self, action_id: str) -> None:
        event = self._opening.pop(action_id, None)
        if event is not None:
            event.set()

    def track(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def settle(self) -> None:
        while self.tasks:  # a task may start another (an event during a write)
            await asyncio.wait(set(self.tasks))

    def on_event(self, event: dict[str, str]) -> None:
        """AMI listener: OriginateResponse and the call-back's UserEvent, for our calls only."""
        name = event.get("Event")
        if name == "OriginateResponse":
            match = ACTION_ID.match(event.get("ActionID", ""))
            if match:
                self.track(self._settle(event["ActionID"], match[1], outcome_of(event)))
        elif name == "UserEvent" and event.get("UserEvent") == CALLBACK_EVENT:
            action_id = event.get("PingjiaCall", "")
            if ACTION_ID.match(action_id):
                self.track(self._dialled(action_id, event.get("DialStatus", "")))

    def failure_reason(self, kind: str, outcome: Outcome) -> str:
        """The reason of a failed outcome; Reason 0 names the dial template it came from."""
        dial = self.dials.get(kind)
        if outcome.code == "0" and dial is not None:
            return f"{outcome.reason}: check the dial string {dial}"
        return outcome.reason

    async def _settle(self, action_id: str, kind: str, outcome: Outcome) -> None:
        opening = self._opening.get(action_id)
        if opening is not None:
            await opening.wait()
        try:
            if outcome.answered:
                await self.record(action_id, "answered", None, outcome.uniqueid)
            else:
                await self.record(action_id, "failed", self.failure_reason(kind, outcome))
        except Exception:  # a listener has nobody to raise to: log it
            log.exception("outcome of an outbound call not recorded", action_id=action_id)

    async def _dialled(self, action_id: str, dial_status: str) -> None:
        status = dial_status.strip().upper()[:16] or "NOT_DIALLED"
        now = self.clock()
        try:
            async with self.sessions() as session:
                calls = CallRepository(session)
                call = await calls.by_action_id(action_id)
                if call is None or call.kind != "callback":
                    return
                if not await calls.set_dial_status(action_id, status, now):
                    return  # another pingjia process heard it first
                reached = status == "ANSWER"
                AuditLog(session).record(
                    now,
                    "ami",
                    "call.citizen_reached" if reached else "call.citizen_not_reached",
                    "case",
                    call.case.case_no,
                    action_id=action_id,
                    dial_status=status,
                )
                await session.commit()
            log.info(
                "call-back dial result",
                case_no=call.case.case_no,
                action_id=action_id,
                dial_status=status,
            )
        except Exception:
            log.exception("call-back dial result not recorded", action_id=action_id)

    async def record(
        self,
        action_id: str,
        status: str,
        reason: str | None,
        uniqueid: str | None = None,
    ) -> datetime:
        """Move a call to `status` unless a report already settled it; audit the move."""
        now = self.clock()
        async with self.sessions() as session:
            calls = CallRepository(session)
            moved = await calls.set_status(
                action_id,
                status,
                now,
                reason=reason,
                uniqueid=uniqueid,
                unless=final_states(status),
            )
            call = await calls.by_action_id(action_id) if moved else None
            case_no = call.case.case_no if call is not None else None
            if call is not None:
                AuditLog(session).record(
                    now,
                    "ami",
                    f"call.{status}",
                    "case",
                    call.case.case_no,
                    action_id=action_id,
                    reason=reason,
                )
            await session.commit()
        if not moved:
            return now
        if status in ("failed", "unknown"):
            log.warning(
                "outbound call", case_no=case_no, action_id=action_id, status=status, reason=reason
            )
        else:
            log.info("outbound call", case_no=case_no, action_id=action_id, status=status)
        return now
