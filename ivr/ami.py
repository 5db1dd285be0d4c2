"""The AMI client: panoramisk's `Manager` under our own connection loop.

panoramisk 1.4 reconnects on its own every `reconnect_timeout` seconds (an int, no backoff),
reports a refused login only as `authenticated = False`, re-sends actions that were in flight
when the connection dropped once Asterisk says `FullyBooted` (a second call to a citizen), and
leaves an Originate that was queued but not reported waiting forever. So we connect and log in
ourselves, supervise the connection with exponential backoff, fail whatever was in flight when
it drops, and hand callers typed results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from panoramisk import Manager  # type: ignore[import-untyped]
from panoramisk.actions import Action  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]

log = structlog.get_logger("pingjia.ami")

CONNECT_TIMEOUT_S = 5.0
# OriginateResponse's Reason is an AST_CONTROL_* code (include/asterisk/frame.h).
REASONS = {
    "0": "no such number or channel (failed)",
    "1": "hung up before answering",
    "3": "rang, no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion (number unreachable)",
}

Fields = dict[str, str | list[str]]


class AmiError(Exception):
    """AMI could not do what was asked; the message says why."""


class AmiLoginError(AmiError):
    """Asterisk refused the user or secret."""


class AmiUnavailable(AmiError):
    """Not connected to Asterisk's AMI (yet, or any more)."""


class OriginateRefused(AmiError):
    """Asterisk answered the Originate with `Response: Error`."""


@dataclass(frozen=True)
class AmiUrl:
    host: str
    port: int
    username: str
    secret: str

    @classmethod
    def parse(cls, url: str) -> AmiUrl:
        """`tcp://user:secret@host:5038`; a wrong form is an error naming the setting."""
        parts = urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname or not parts.username:
            raise ValueError(
                "PINGJIA_AMI_URL must look like tcp://user:secret@host:5038 "
                f"(got scheme {parts.scheme!r}, host {parts.hostname!r})"
            )
        return cls(
            parts.hostname,
            parts.port or 5038,
            unquote(parts.username),
            unquote(parts.password or ""),
        )

    def __str__(self) -> str:  # never shows the secret
        return f"tcp://{self.username}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Outcome:
    """What Asterisk's OriginateResponse said, or that it never came."""

    answered: bool
    reason: str
    uniqueid: str | None = None
    known: bool = True  # False: the connection dropped or the wait ran out


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its own reconnect: a lost connection resolves `lost`."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        while self.awaiting_actions:  # never re-send an Originate after a reconnect
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(
                    AmiUnavailable("the AMI connection dropped before Asterisk answered")
                )
        if not self.lost.done():
            self.lost.set_result(None)


class _Originate(Action):  # type: ignore[misc]
    """An Originate whose first answer (`Response:`) is seen before its OriginateResponse."""

    def __init__(self, fields: Fields) -> None:
        super().__init__(fields)
        self.queued: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def add_message(self, message: Any) -> Any:
        if not self.queued.done():
            self.queued.set_result(message)
        return super().add_message(message)


def _first(message: Any, key: str) -> str:
    value = message.get(key, "")
    return str(value[0] if isinstance(value, list) else value)


class AmiClient:
    """One supervised AMI connection; `originate` waits briefly for it to be up."""

    def __init__(
        self,
        url: AmiUrl,
        *,
        backoff_start_s: float = 0.5,
        backoff_max_s: float = 30.0,
        ping_interval_s: int = 20,
    ) -> None:
        self.url = url
        self.backoff_start_s = backoff_start_s
        self.backoff_max_s = backoff_max_s
        self.ping_interval_s = ping_interval_s
        self.last_error: str | None = None
        self.connects = 0
        self._manager: _Manager | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._ready is not None and self._ready.is_set()

    async def start(self) -> None:
        """Start connecting in the background; a down Asterisk does not stop pingjia."""
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name="ami")

    async def wait_connected(self, timeout_s: float) -> bool:
        if self._ready is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    async def _supervise(self) -> None:
        assert self._ready is not None
        delay = self.backoff_start_s
        while True:
            try:
                manager = await self.connect_once()
                delay = self.backoff_start_s
                self._ready.set()
                await manager.lost
                log.warning("AMI connection lost; reconnecting", ami=str(self.url))
            except AmiLoginError as exc:
                self.last_error = str(exc)
                log.error("AMI login refused", ami=str(self.url), error=str(exc))
            except (OSError, TimeoutError, AmiError) as exc:
                self.last_error = f"cannot reach Asterisk's AMI at {self.url}: {exc or 'timeout'}"
                log.warning("AMI not reachable", ami=str(self.url), error=str(exc) or "timeout")
            self._ready.clear()
            self._manager = None
            # Jitter: several pingjia processes must not hammer a restarting Asterisk together.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max_s)

    async def connect_once(self) -> _Manager:
        """Connect and log in; raises AmiLoginError on a refused secret, OSError if unreachable."""
        loop = asyncio.get_running_loop()
        manager = _Manager(
            host=self.url.host,
            port=self.url.port,
            username=self.url.username,
            secret=self.url.secret,
            events="call",  # OriginateResponse is a `call` event; nothing else is needed
            loop=loop,
            ping_delay=self.ping_interval_s,
            ping_interval=self.ping_interval_s,
            log=logging.getLogger("pingjia.ami.panoramisk"),
        )
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(AMIProtocol, self.url.host, self.url.port), CONNECT_TIMEOUT_S
        )
        made: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        made.set_result((transport, protocol))
        manager.connection_made(made)  # sends Login
        login = manager.authenticated_future
        done, _ = await asyncio.wait(
            {login, manager.lost}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if login not in done:
            manager.close()
            raise AmiUnavailable("Asterisk closed the connection or did not answer the login")
        response = login.result()
        if not response.success:
            manager.close()
            raise AmiLoginError(
                f"Asterisk refused the AMI login of user {self.url.username!r} at "
                f"{self.url.host}:{self.url.port}: {_first(response, 'Message') or 'no reason'}; "
                "check the user and secret of PINGJIA_AMI_URL against manager.conf"
            )
        self.connects += 1
        self.last_error = None
        self._manager = manager
        log.info("AMI connected", ami=str(self.url))
        return manager

    async def originate(self, fields: Fields, *, wait_s: float = 5.0) -> Pending:
        """Send an async Originate; returns once Asterisk queued it, raises if it refused."""
        if not await self.wait_connected(wait_s) or self._manager is None:
            raise AmiUnavailable(
                self.last_error or f"not connected to Asterisk's AMI at {self.url}"
            )
        manager = self._manager
        action = _Originate({"Action": "Originate", "Async": "true", **fields})
        manager.send_action(action)
        await asyncio.wait(
            {action.queued, action.future, manager.lost},
            timeout=wait_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if action.future.done() and action.future.exception() is not None:
            raise AmiUnavailable(str(action.future.exception()))
        if not action.queued.done():
            raise AmiUnavailable(f"Asterisk did not answer the Originate within {wait_s:.0f} s")
        first = action.queued.result()
        if _first(first, "Response") != "Success":
            raise OriginateRefused(_first(first, "Message") or "Originate refused")
        return Pending(action, manager)


class Pending:
    """A queued Originate; `outcome` waits for its OriginateResponse."""

    def __init__(self, action: _Originate, manager: _Manager) -> None:
        self.action = action
        self.manager = manager

    @property
    def action_id(self) -> str:
        return str(self.action.action_id)

    async def outcome(self, timeout_s: float) -> Outcome:
        future = self.action.future
        await asyncio.wait(
            {future, self.manager.lost}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if not future.done():
            why = "AMI connection lost" if self.manager.lost.done() else "no OriginateResponse"
            return Outcome(False, f"outcome unknown: {why}", known=False)
        if future.exception() is not None:
            return Outcome(False, f"outcome unknown: {future.exception()}", known=False)
        answers = future.result()
        event = answers[-1] if isinstance(answers, list) else answers
        code = _first(event, "Reason")
        reason = REASONS.get(code, f"reason {code or '?'}")
        uniqueid = _first(event, "Uniqueid")
        answered = _first(event, "Response") == "Success"
        return Outcome(answered, reason, uniqueid if uniqueid not in ("", "<null>") else None)
