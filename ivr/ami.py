"""The AMI client: panoramisk's `Manager` under our own connection loop.

panoramisk 1.4 reconnects on its own every `reconnect_timeout` seconds (an int, no backoff),
reports a refused login only as `authenticated = False`, re-sends actions that were in flight
when the connection dropped once Asterisk says `FullyBooted` (a second call to a citizen), pings
without ever looking at the reply (a hung Asterisk looks connected), and leaves an Originate
that was queued but not reported waiting forever. So we connect and log in ourselves, supervise
the connection (backoff, but a request that needs AMI retries at once), ping with a reply
timeout, never re-send anything, and keep every Originate we sent in a registry that outlives
the connection: Asterisk sends `OriginateResponse` to every manager session, so a report that
comes after a reconnect (or after the client stopped waiting) still settles its call by ActionID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]

from ivr.ami_session import (
    AmiError,
    AmiLoginError,
    AmiUnavailable,
    Fields,
    Originate,
    Pending,
    Session,
    first,
    message_fields,
    outcome_of,
)

log = structlog.get_logger("pingjia.ami")

CONNECT_TIMEOUT_S = 5.0
# The events pingjia uses (deploy/asterisk/manager.conf filters the rest away): OriginateResponse
# is a `call` event, the dialplan's UserEvent (a call-back's dial result) a `user` one.
LOGIN_EVENTS = "call,user"
Listener = Callable[[dict[str, str]], None]


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


class AmiClient:
    """One supervised AMI connection; `ensure_connected` retries at once when it is down."""

    def __init__(
        self,
        url: AmiUrl,
        *,
        backoff_start_s: float = 0.5,
        backoff_max_s: float = 30.0,
        ping_interval_s: float = 20.0,
        ping_timeout_s: float = 5.0,
        retry_gap_s: float = 0.5,
    ) -> None:
        self.url = url
        self.backoff_start_s = backoff_start_s
        self.backoff_max_s = backoff_max_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.retry_gap_s = retry_gap_s  # a burst of requests retries at most this often
        self.last_error: str | None = None
        self.connects = 0
        self._manager: Session | None = None
        self._ready: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._changed: asyncio.Condition | None = None
        self._attempts = 0  # connection attempts finished
        self._attempting = False
        self._last_attempt = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._originates: dict[str, Pending] = {}
        self._listeners: list[Listener] = []

    @property
    def connected(self) -> bool:
        return self._ready is not None and self._ready.is_set()

    @property
    def state(self) -> str:
        return "connected" if self.connected else "disconnected"

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every OriginateResponse and UserEvent, from any connection."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Start connecting in the background; a down Asterisk does not stop pingjia."""
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._supervise(), name="ami")

    async def wait_connected(self, timeout_s: float) -> bool:
        if self._ready is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    async def ensure_connected(self, timeout_s: float) -> bool:
        """Connected now, or after one attempt started at once (not at the backoff's pace)."""
        if self.connected:
            return True
        if self._ready is None or self._wake is None or self._changed is None:
            return False
        loop = asyncio.get_running_loop()
        if not self._attempting and loop.time() - self._last_attempt < self.retry_gap_s:
            return False  # an attempt just failed: its error is fresh
        target = self._attempts + 1
        self._wake.set()
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.connected or self._attempts >= target),
                    timeout_s,
                )
        return self.connected

    async def close(self) -> None:
        # The flag, not the cancel alone, ends the supervisor: on Python 3.11 a cancel that meets
        # a connect finishing in the same loop turn comes out of `wait_for` as the connect's own
        # result or OSError, and a reconnect loop that only relies on the cancel runs on forever
        # (seen as a test teardown hung for minutes, reconnecting every 0.1 s).
        self._closing = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _supervise(self) -> None:
        assert self._ready is not None and self._wake is not None
        loop = asyncio.get_running_loop()
        delay = self.backoff_start_s
        while not self._closing:
            manager: Session | None = None
            self._attempting = True
            try:
                manager = await self.connect_once()
            except AmiLoginError as exc:
                self.last_error = str(exc)
                log.error("AMI login refused", ami=str(self.url), error=str(exc))
            except (OSError, TimeoutError, AmiError) as exc:
                self.last_error = f"cannot reach Asterisk's AMI at {self.url}: {exc or 'timeout'}"
                log.warning("AMI not reachable", ami=str(self.url), error=str(exc) or "timeout")
            finally:
                self._attempting = False
                self._attempts += 1
                self._last_attempt = loop.time()
            if manager is not None:
                delay = self.backoff_start_s
                self._ready.set()
                await self._notify()
                await self._keep_alive(manager)
                log.warning("AMI connection lost; reconnecting", ami=str(self.url))
                self._ready.clear()
                self._manager = None
                await self._notify()
            else:
                await self._notify()
            # Jitter: several pingjia processes must not hammer a restarting Asterisk together;
            # a request that needs AMI cuts the wait short (`ensure_connected`).
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max_s)

    async def _keep_alive(self, manager: Session) -> None:
        """Ping every `ping_interval_s`; no reply within `ping_timeout_s` drops the connection."""
        while True:
            await asyncio.wait({manager.lost}, timeout=self.ping_interval_s)
            if manager.lost.done():
                return
            reply = manager.send_action({"Action": "Ping"})
            await asyncio.wait(
                {reply, manager.lost},
                timeout=self.ping_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if manager.lost.done():
                return
            if not reply.done():
                self.last_error = (
                    f"Asterisk's AMI at {self.url} did not answer Ping within "
                    f"{self.ping_timeout_s:g} s (hung or overloaded)"
                )
                log.warning("AMI ping unanswered; reconnecting", ami=str(self.url))
                manager.drop()
                return

    async def connect_once(self) -> Session:
        """Connect and log in; raises AmiLoginError on a refused secret, OSError if unreachable."""
        loop = asyncio.get_running_loop()
        manager = Session(
            self.on_event,
            host=self.url.host,
            port=self.url.port,
            username=self.url.username,
            secret=self.url.secret,
            events=LOGIN_EVENTS,
            loop=loop,
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
                f"{self.url.host}:{self.url.port}: {first(response, 'Message') or 'no reason'}; "
                "check the user and secret of PINGJIA_AMI_URL against manager.conf"
            )
        self.connects += 1
        self.last_error = None
        self._manager = manager
        log.info("AMI connected", ami=str(self.url))
        return manager

    def originate(self, fields: Fields) -> Pending:
        """Send an async Originate; raises AmiUnavailable (nothing sent) when not connected."""
        manager = self._manager
        if not self.connected or manager is None:
            raise AmiUnavailable(
                self.last_error or f"not connected to Asterisk's AMI at {self.url}"
            )
        action_id = str(fields["ActionID"])
        pending = Pending(action_id)
        self._originates[action_id] = pending
        manager.send_action(
            Originate(
                {"Action": "Originate", "Async": "true", **fields},
                pending,
                self.on_event,
                self.forget,
            )
        )
        return pending

    def forget(self, pending: Pending) -> None:
        """Stop expecting a report for this Originate (refused, or waited for long enough)."""
        self._originates.pop(pending.action_id, None)

    def on_event(self, message: Any) -> None:
        """An event pingjia listens to, from whichever connection brought it."""
        event = message_fields(message)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # one listener's bug must not lose the event for the others
                log.exception("AMI event listener failed", ami_event=event.get("Event"))
        if event.get("Event") == "OriginateResponse":
            pending = self._originates.pop(event.get("ActionID", ""), None)
            if pending is not None and not pending.reported.done():
                pending.reported.set_result(outcome_of(event))


__all__ = [
    "LOGIN_EVENTS",
    "AmiClient",
    "AmiError",
    "AmiLoginError",
    "AmiUnavailable",
    "AmiUrl",
    "Pending",
    "outcome_of",
]
