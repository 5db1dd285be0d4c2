"""A fake Asterisk Manager Interface: a real TCP server on 127.0.0.1 speaking AMI's framing.

What it says is what Asterisk's main/manager.c writes: the banner `Asterisk Call Manager/…`
on connect; blocks of `Key: Value` lines ended by an empty line (CRLF); `Response:` with the
client's `ActionID` echoed and a `Message:`; a refused login answered `Response: Error`,
`Message: Authentication failed` and the connection closed; an async Originate answered
`Response: Success`, `Message: Originate successfully queued`, then `Event: OriginateResponse`
carrying the same ActionID, `Response: Success|Failure` and a `Reason` (AST_CONTROL_* code:
4 answered, 3 no answer, 5 busy, 8 congestion, 0 failed), `Uniqueid: <unknown>` on failure.
Like Asterisk's `manager_event`, every event goes to every logged-in session, not only to the
one that sent the Originate, and passes the user's `eventfilter` regexes (legacy syntax:
`!` excludes; with any include filter, only matching events pass).

Controls for tests: `actions` records every action received; `script_originate(...)` sets
how the next Originates end (refused, acknowledged late, reported late, `DialStatus` of a
call-back's citizen leg); `drop()` closes every connection (Asterisk restarting); `stall()` /
`resume()` stop and restart all answering, as SIGSTOP / SIGCONT do (what arrived meanwhile is
answered on resume, even if its connection is gone: a queued Originate is still placed);
`noise()` sends the channel events a busy PBX sends; `secret` is what Login must present.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

BANNER = "Asterisk Call Manager/9.0.0\r\n"
EOL = "\r\n"


@dataclass
class OriginatePlan:
    """How one Originate ends: refused (`error`), or reported `delay` s after its ack."""

    error: str | None = None  # Response: Error with this Message
    answered: bool = True
    reason: str = "4"
    delay: float = 0.0
    ack_delay: float = 0.0  # a busy Asterisk: the ack (and the call) come this late
    drop_before_response: bool = False  # the connection dies after the ack, before the event
    # A call-back's citizen leg: the dialplan's hang-up handler sends UserEvent PingjiaCallback
    # with this DIALSTATUS, `dial_delay` s after the OriginateResponse (None: no event).
    dial_status: str | None = None
    dial_delay: float = 0.0


@dataclass
class FakeAmi:
    username: str = "pingjia"
    secret: str = "pingjia-ami"
    actions: list[dict[str, str | list[str]]] = field(default_factory=list)
    plans: list[OriginatePlan] = field(default_factory=list)
    logins: int = 0
    port: int = 0
    eventfilters: list[str] = field(default_factory=list)  # manager.conf `eventfilter` values
    events_sent: list[dict[str, str]] = field(default_factory=list)  # after the filters
    _running: asyncio.Event = field(default_factory=asyncio.Event)
    _sessions_live: dict[asyncio.StreamWriter, bool] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _sessions: set[asyncio.Task[None]] = field(default_factory=set)
    _uniqueid: int = 1_700_000_000

    @property
    def url(self) -> str:
        return f"tcp://{self.username}:{self.secret}@127.0.0.1:{self.port}"

    def url_with(self, secret: str) -> str:
        return f"tcp://{self.username}:{secret}@127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeAmi:
        self._running.set()
        self._server = await asyncio.start_server(self._session, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._sessions:  # let each session see its closed socket and end
            await asyncio.wait(set(self._sessions), timeout=1.0)

    def drop(self) -> None:
        """Close every open connection, as an Asterisk restart does."""
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def stall(self) -> None:
        """Stop answering anything (SIGSTOP): connections stay open, pings go unanswered."""
        self._running.clear()

    def resume(self) -> None:
        """Answer again (SIGCONT), starting with what arrived while stalled."""
        self._running.set()

    def noise(self) -> None:
        """The call events of other channels a PBX sends to every `call` session."""
        for name in ("Newchannel", "Newstate", "VarSet", "DialBegin", "Hangup"):
            self.broadcast(
                Event=name,
                Privilege="call,all",
                Channel="PJSIP/trunk-00000042",
                Uniqueid="1700000000.42",
            )

    def broadcast(self, **headers: str) -> None:
        """An event to every logged-in session, through the eventfilters."""
        text = "".join(f"{key}: {value}{EOL}" for key, value in headers.items())
        if not passes_eventfilters(self.eventfilters, text):
            return
        self.events_sent.append(dict(headers))
        for writer, authenticated in list(self._sessions_live.items()):
            if authenticated:
                _send(writer, **headers)

    def script_originate(self, *plans: OriginatePlan) -> None:
        self.plans.extend(plans)

    def originates(self) -> list[dict[str, str | list[str]]]:
        return [a for a in self.actions if str(a.get("Action", "")).lower() == "originate"]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        writer.write(BANNER.encode())
        authenticated = False
        self._sessions_live[writer] = False
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                await self._running.wait()  # a stalled Asterisk reads nothing
                action = _parse(block.decode("utf-8", "replace"))
                self.actions.append(action)
                authenticated = await self._answer(action, writer, authenticated)
                if writer in self._sessions_live:
                    self._sessions_live[writer] = authenticated
        except (asyncio.IncompleteReadError, ConnectionError, _Close):
            pass
        finally:
            self._sessions_live.pop(writer, None)
            if task is not None:
                self._sessions.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(
        self, action: dict[str, str | list[str]], writer: asyncio.StreamWriter, authenticated: bool
    ) -> bool:
        name = str(action.get("Action", "")).lower()
        action_id = str(action.get("ActionID", ""))
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                self.logins += 1
                _send(
                    writer,
                    Response="Success",
                    ActionID=action_id,
                    Message="Authentication accepted",
                )
                return True
            _send(writer, Response="Error", ActionID=action_id, Message="Authentication failed")
            await writer.drain()
            raise _Close
        if not authenticated:
            _send(writer, Response="Error", ActionID=action_id, Message="Authentication Required")
        elif name == "ping":
            _send(
                writer,
                Response="Success",
                ActionID=action_id,
                Ping="Pong",
                Timestamp="1700000000.000000",
            )
        elif name == "originate":
            self._start(self._originate(action, writer))
        elif name == "logoff":
            _send(
                writer, Response="Goodbye", ActionID=action_id, Message="Thanks for all the fish."
            )
            await writer.drain()
            raise _Close
        else:
            _send(writer, Response="Error", ActionID=action_id, Message="Invalid/unknown command")
        await writer.drain()
        return authenticated

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _originate(
        self, action: dict[str, str | list[str]], writer: asyncio.StreamWriter
    ) -> None:
        action_id = str(action.get("ActionID", ""))
        plan = self.plans.pop(0) if self.plans else OriginatePlan()
        if not action.get("Channel"):
            plan = OriginatePlan(error="Channel not specified")
        await asyncio.sleep(plan.ack_delay)
        await self._running.wait()
        if plan.error is not None:
            _send(writer, Response="Error", ActionID=action_id, Message=plan.error)
            return
        _send(
            writer, Response="Success", ActionID=action_id, Message="Originate successfully queued"
        )
        if plan.drop_before_response:
            writer.close()
        self._uniqueid += 1
        await self._report(action, plan, f"{self._uniqueid}.1")

    async def _report(
        self, action: dict[str, str | list[str]], plan: OriginatePlan, uniqueid: str
    ) -> None:
        await asyncio.sleep(plan.delay)
        await self._running.wait()
        self.broadcast(
            Event="OriginateResponse",
            Privilege="call,all",
            ActionID=str(action.get("ActionID", "")),
            Response="Success" if plan.answered else "Failure",
            Channel=str(action.get("Channel", "")),
            Context=str(action.get("Context", "")),
            Exten=str(action.get("Exten", "")),
            Application="",
            Data="",
            Reason=plan.reason,
            Uniqueid=uniqueid if plan.answered else "<unknown>",
            CallerIDNum="<unknown>",
            CallerIDName="<unknown>",
        )
        if plan.dial_status is None or not plan.answered:
            return
        await asyncio.sleep(plan.dial_delay)
        await self._running.wait()
        variables = action.get("Variable", [])
        found = dict(
            v.split("=", 1) for v in ([variables] if isinstance(variables, str) else variables)
        )
        self.broadcast(
            Event="UserEvent",
            Privilege="user,all",
            Channel=str(action.get("Channel", "")) + "-00000001",
            Uniqueid=uniqueid,
            UserEvent="PingjiaCallback",
            PingjiaCall=found.get("PINGJIA_CALL", ""),
            DialStatus=plan.dial_status,
        )


class _Close(Exception):
    """Asterisk ends the session (failed login, Logoff)."""


def _send(writer: asyncio.StreamWriter, **headers: str) -> None:
    if writer.is_closing():
        return
    text = "".join(f"{key}: {value}{EOL}" for key, value in headers.items()) + EOL
    writer.write(text.encode())


def passes_eventfilters(filters: list[str], text: str) -> bool:
    """manager.c's legacy eventfilter: includes first (if any), then `!` excludes."""
    includes = [f for f in filters if not f.startswith("!")]
    excludes = [f[1:] for f in filters if f.startswith("!")]
    if includes and not any(re.search(f, text) for f in includes):
        return False
    return not any(re.search(f, text) for f in excludes)


def _parse(block: str) -> dict[str, str | list[str]]:
    """An action block; a header given twice (Variable) becomes a list."""
    action: dict[str, str | list[str]] = {}
    for line in block.split(EOL):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in action:
            previous = action[key]
            action[key] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            action[key] = value
    return action
