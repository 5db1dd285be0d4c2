"""panoramisk's Manager under pingjia's rules, and the messages pingjia reads from it.

`Session` is one AMI connection that never reconnects, pings or re-sends by itself (AmiClient
in ivr/ami.py supervises it); `Pending` is one Originate sent on it: its acknowledgement, then
its OriginateResponse, which may come on a later connection (Asterisk sends it to every manager
session), so a `Pending` lives in the client's registry, not in the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager  # type: ignore[import-untyped]
from panoramisk.actions import Action  # type: ignore[import-untyped]

# OriginateResponse's Reason is an AST_CONTROL_* code (include/asterisk/frame.h).
REASONS = {
    "0": "no such number or channel (failed)",
    "1": "hung up before answering",
    "3": "rang, no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion (number unreachable)",
}
NO_UNIQUEID = ("", "<null>", "<unknown>")  # Asterisk writes <unknown> on a failed Originate

Fields = dict[str, str | list[str]]


class AmiError(Exception):
    """AMI could not do what was asked; the message says why."""


class AmiLoginError(AmiError):
    """Asterisk refused the user or secret."""


class AmiUnavailable(AmiError):
    """Not connected to Asterisk's AMI (yet, or any more): nothing was sent."""


class OriginateRefused(AmiError):
    """Asterisk answered the Originate with `Response: Error`."""


@dataclass(frozen=True)
class Outcome:
    """What Asterisk's OriginateResponse said, or that it never came."""

    answered: bool
    reason: str
    uniqueid: str | None = None
    known: bool = True  # False: the wait ran out
    code: str | None = None  # the Reason code


def message_fields(message: Any) -> dict[str, str]:
    """An AMI message as plain `str` values (a repeated header keeps its first value)."""
    return {str(k): first(message, k) for k in message}


def outcome_of(event: dict[str, str]) -> Outcome:
    """Read an `OriginateResponse` event."""
    code = event.get("Reason", "")
    uniqueid = event.get("Uniqueid", "")
    return Outcome(
        answered=event.get("Response") == "Success",
        reason=REASONS.get(code, f"reason {code or '?'}"),
        uniqueid=None if uniqueid in NO_UNIQUEID else uniqueid,
        code=code or None,
    )


def first(message: Any, key: str) -> str:
    value = message.get(key, "")
    return str(value[0] if isinstance(value, list) else value)


class Session(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its own reconnect or blind ping; a lost connection
    resolves `lost`; the events pingjia uses go to `on_event`."""

    def __init__(self, on_event: Callable[[Any], None], **config: Any) -> None:
        super().__init__(**config)
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_event = on_event
        for name in ("OriginateResponse", "UserEvent"):
            self.register_event(name, lambda _manager, event: on_event(event))

    def ping(self) -> None:
        """panoramisk's pinger never reads the reply; AmiClient pings with a timeout."""
        self.pinger = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        while self.awaiting_actions:  # never re-send an action after a reconnect
            action = self.awaiting_actions.popleft()
            if isinstance(action, Originate) or action.future.done():
                continue  # Asterisk may have it: its report can still come (registry)
            action.future.set_exception(
                AmiUnavailable("the AMI connection dropped before Asterisk answered")
            )
            action.future.add_done_callback(lambda f: f.exception())
        if not self.lost.done():
            self.lost.set_result(None)

    def drop(self) -> None:
        """Close the connection ourselves (a ping unanswered): panoramisk then reports nothing."""
        self.close()
        self.connection_lost(None)


class Pending:
    """An Originate sent to Asterisk: its acknowledgement, then its OriginateResponse."""

    def __init__(self, action_id: str) -> None:
        loop = asyncio.get_running_loop()
        self.action_id = action_id
        self.acked: asyncio.Future[dict[str, str]] = loop.create_future()
        self.reported: asyncio.Future[Outcome] = loop.create_future()

    async def wait_ack(self, timeout_s: float) -> bool:
        """True once Asterisk queued it (or already reported it), False if it has not said yet
        (the call may still happen); raises OriginateRefused on `Response: Error`."""
        waits: set[asyncio.Future[Any]] = {self.acked, self.reported}
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if self.acked.done():
            ack = self.acked.result()
            if ack.get("Response") != "Success":
                raise OriginateRefused(ack.get("Message") or "Originate refused")
            return True
        return self.reported.done()

    async def outcome(self, timeout_s: float) -> Outcome:
        """The OriginateResponse, whichever connection brought it, or an unknown outcome."""
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self.reported), timeout_s)
        return Outcome(
            False,
            f"Asterisk did not report the call's outcome within {timeout_s:.0f} s",
            known=False,
        )


class Originate(Action):  # type: ignore[misc]
    """An Originate whose answers go to its `Pending` (the ack) and to `on_event` (the
    OriginateResponse, when it comes on the same connection)."""

    def __init__(
        self,
        fields: Fields,
        pending: Pending,
        on_event: Callable[[Any], None],
        on_refused: Callable[[Pending], None],
    ) -> None:
        super().__init__(fields)
        self.pending = pending
        self.on_event = on_event
        self.on_refused = on_refused

    def add_message(self, message: Any) -> Any:
        if "event" in message:
            self.on_event(message)
        elif not self.pending.acked.done():
            ack = message_fields(message)
            if ack.get("Response") != "Success":
                self.on_refused(self.pending)
            self.pending.acked.set_result(ack)
        return super().add_message(message)
