"""The FastAGI server: routes each session by script name to a flow, on asyncio streams.

Our own, not panoramisk's `fast_agi.Application` (panoramisk stays for AMI): its handler
freezes the whole server on a peer that closes before the blank line, a query string breaks
its routing, and `except BaseException` swallows cancellation (../shared/PLATFORM.md); with
those replaced, all that was left of it was a dict reached through a private attribute.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog

from ivr.agi.channel import AgiError, Channel, Hangup
from ivr.agi.protocol import ProtocolError, ScriptRequest, parse_environment, script_request
from ivr.prompt_check import PromptCheck

log = structlog.get_logger("pingjia.ivr")

HEADER_TIMEOUT_S = 5.0  # Asterisk sends the whole block at once; a slow peer is not Asterisk
MAX_HEADER_BYTES = 16 * 1024
CLOSE_TIMEOUT_S = 2.0

FlowRunner = Callable[[Channel, ScriptRequest], Awaitable[None]]


class AgiObserver(Protocol):
    """What the server reports (the composition root turns it into Prometheus metrics)."""

    def started(self, script: str) -> None: ...
    def finished(self, script: str, outcome: str) -> None: ...
    def rejected(self) -> None: ...
    def command(self, command: str, turnaround_s: float) -> None: ...
    def missing_prompt(self, prompt: str) -> None: ...
    def recording_failed(self, problem: str) -> None: ...


class AgiServer:
    """Routes each FastAGI session by script name (query string ignored) to a flow."""

    def __init__(
        self,
        flows: Mapping[str, FlowRunner],
        *,
        header_timeout: float = HEADER_TIMEOUT_S,
        observer: AgiObserver | None = None,
        prompt_check: PromptCheck | None = None,
    ) -> None:
        self.header_timeout = header_timeout
        self.observer = observer
        self.prompt_check = prompt_check
        self.active: set[asyncio.Task[Any]] = set()
        self.sessions = 0
        self.rejected = 0
        self._server: asyncio.Server | None = None
        # Script name -> runner; `_dispatch` calls it with a Channel and the ScriptRequest it
        # already parsed (no request object, no second parse).
        self.routes: dict[str, FlowRunner] = dict(flows)

    @property
    def scripts(self) -> list[str]:
        return list(self.routes)

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen; the server runs until `close`."""
        self._server = await asyncio.start_server(
            self.handler, host, port, limit=MAX_HEADER_BYTES, backlog=1024
        )
        return self._server

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening, let running calls finish for `grace` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
        if self.active:
            _, pending = await asyncio.wait(set(self.active), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace)
        if self._server is not None:
            await self._server.wait_closed()

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One FastAGI session; any failure ends this session only."""
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        peer = writer.get_extra_info("peername")
        try:
            env = await self._environment(reader, peer)
            if env is not None:
                await self._dispatch(env, reader, writer)
        finally:
            if task is not None:
                self.active.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):  # no task per call, as wait_for
                    await writer.wait_closed()

    async def _environment(
        self, reader: asyncio.StreamReader, peer: object
    ) -> dict[str, str] | None:
        try:
            async with asyncio.timeout(self.header_timeout):
                block = await reader.readuntil(b"\n\n")
            return parse_environment(block)
        except asyncio.IncompleteReadError as exc:
            problem, seen = "closed before the end of the AGI environment", exc.partial
        except asyncio.LimitOverrunError:
            problem, seen = f"sent over {MAX_HEADER_BYTES} bytes without a blank line", b""
        except TimeoutError:
            problem, seen = f"sent no complete AGI environment in {self.header_timeout} s", b""
        except (ProtocolError, ConnectionError) as exc:
            problem, seen = str(exc), b""
        self.rejected += 1
        if self.observer is not None:
            self.observer.rejected()
        log.warning("agi connection rejected", peer=str(peer), problem=problem, seen=seen[:60])
        return None

    async def _dispatch(
        self, env: dict[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sessions += 1
        request = script_request(env)
        uniqueid = env.get("agi_uniqueid", "?")
        host = _peer_host(writer.get_extra_info("peername"))
        route = self.routes.get(request.script)
        if route is None:
            if self.observer is not None:
                self.observer.started("unknown")
            self._finished("unknown", "unknown_script")
            log.error(
                "agi script unknown; hanging up",
                script=request.script or "(none)",
                known=", ".join(self.routes),
                uniqueid=uniqueid,
            )
            await Channel(reader, writer, env).hangup()
            return
        started = time.perf_counter()
        on_command = None
        if self.observer is not None:
            self.observer.started(request.script)
            on_command = self.observer.command
        channel = Channel(
            reader, writer, env, on_command=on_command, peer=host, report=self.observer
        )
        outcome = "cancelled"
        # Bound for the rest of this task only: each session runs in a task (and a context)
        # of its own, so nothing needs unbinding (bench/ivr_bench.py: the context manager's
        # bind and reset were 1 % of the server).
        structlog.contextvars.bind_contextvars(uniqueid=uniqueid, script=request.script)
        try:
            await route(channel, request)
            outcome = "completed"
        except Hangup as exc:
            outcome = "hangup"
            log.info("agi session ended by hang-up", detail=str(exc))
        except AgiError as exc:
            outcome = "agi_error"
            log.warning("agi command refused; call left", detail=str(exc))
        except Exception:  # one broken call must not take the server down
            outcome = "error"
            log.exception("agi flow failed; call left")
        else:
            log.info("agi session done", seconds=round(time.perf_counter() - started, 3))
        finally:
            self._finished(request.script, outcome)
        # After the call (ours or the caller's HANGUP): nobody waits for it (ivr/prompt_check.py).
        check = self.prompt_check
        if check is not None and outcome in ("completed", "hangup") and check.due(host):
            await check.run(channel)

    def _finished(self, script: str, outcome: str) -> None:
        if self.observer is not None:
            self.observer.finished(script, outcome)


def _peer_host(peer: object) -> str:
    """The Asterisk host's address; an IPv4 one as such on a dual-stack listener."""
    if not isinstance(peer, tuple) or not peer:
        return ""
    host = str(peer[0])
    return host.removeprefix("::ffff:") if "." in host else host
