"""One SMPP transceiver session kept up: bind, enquire_link when idle, reconnect with capped
exponential backoff, requests matched to responses by sequence number.

A request waits briefly for a bind, then fails (`NotBound`): a caller never has a message
queued behind its back that goes out after it was told it failed. `window` caps outstanding
requests (the carrier's window), `throughput` paces submits per second (its TPS).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from sms.smpp import pdu
from sms.smpp.pdu import Pdu, PduError, ShortMessage

log = structlog.get_logger("pingjia.sms")

DeliverHandler = Callable[[ShortMessage], Awaitable[None]]


class SessionError(Exception):
    """The request did not get an answer; whether the SMSC took it is unknown or it did not."""


class NotBound(SessionError):
    """No bound session within the wait."""


class LinkLost(SessionError):
    """The connection ended before the answer came."""


class NoAnswer(SessionError):
    """No answer within the response timeout."""


class BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind_transceiver refused: {pdu.status_name(status)}")
        self.status = status


class Session:
    """A transceiver session to one SMSC; `start()` it inside the running loop."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        system_type: str = "",
        *,
        on_deliver: DeliverHandler,
        enquire_link_s: float = 30.0,
        response_timeout: float = 10.0,
        bind_wait: float = 2.0,
        window: int = 64,
        throughput: float | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.host, self.port = host, port
        self._bind_body = pdu.bind_transceiver(system_id, password, system_type)
        self.on_deliver = on_deliver
        self.enquire_link_s = enquire_link_s
        self.response_timeout = response_timeout
        self.bind_wait = bind_wait
        self.throughput = throughput
        self.backoff = backoff
        self.bound = asyncio.Event()
        self.binds = 0  # how many times we bound (1 + reconnects)
        self._window = asyncio.Semaphore(window)
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0
        self._next_slot = 0.0
        self._heard = time.monotonic()
        self._runner: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        """Connect and bind in the background; reconnect whenever the link is lost."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="smpp-session")

    async def submit(self, body: bytes) -> Pdu:
        """Send one submit_sm and return its answer (submit_sm_resp or generic_nack)."""
        if not self.bound.is_set():
            try:
                await asyncio.wait_for(self.bound.wait(), self.bind_wait)
            except TimeoutError:
                raise NotBound(f"not bound to {self.host}:{self.port}") from None
        async with self._window:
            await self._pace()
            return await self._call(pdu.SUBMIT_SM, body)

    async def close(self) -> None:
        """Unbind and stop reconnecting; safe to call twice."""
        self._closing = True
        if self.bound.is_set():
            with contextlib.suppress(SessionError, OSError):
                await self._call(pdu.UNBIND, b"", wait=1.0)
        if self._writer is not None:
            self._writer.close()
        runner, self._runner = self._runner, None
        for task in [*self._handlers, *([runner] if runner else [])]:
            task.cancel()
        await asyncio.gather(*self._handlers, *([runner] if runner else []), return_exceptions=True)

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._closing:
            binds = self.binds
            try:
                await self._serve()
            except BindRefused as exc:
                log.warning("smpp bind refused", host=self.host, error=str(exc))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, PduError) as exc:
                log.warning("smpp link lost", host=self.host, error=repr(exc))
            except Exception:  # a fault of ours must not end the reconnecting
                log.exception("smpp session failed", host=self.host)
            if self._closing:
                return
            if self.binds > binds:  # it had worked: start the backoff over
                delay = self.backoff[0]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _serve(self) -> None:
        connect = asyncio.open_connection(self.host, self.port, limit=pdu.MAX_PDU)
        reader, writer = await asyncio.wait_for(connect, self.response_timeout)
        self._writer = writer
        keeper: asyncio.Task[None] | None = None
        try:
            writer.write(Pdu(pdu.BIND_TRANSCEIVER, 0, self._next(), self._bind_body).encode())
            answer = await asyncio.wait_for(pdu.read_pdu(reader), self.response_timeout)
            if answer.command_id != pdu.BIND_TRANSCEIVER_RESP or answer.status != pdu.ESME_ROK:
                raise BindRefused(answer.status or pdu.ESME_RBINDFAIL)
            self.binds += 1
            self._heard = time.monotonic()
            self.bound.set()
            log.info("smpp bound", host=self.host, port=self.port)
            keeper = asyncio.create_task(self._keep_alive(writer), name="smpp-enquire-link")
            await self._read(reader, writer)
        finally:
            self.bound.clear()
            if keeper is not None:
                keeper.cancel()
            self._writer = None
            writer.close()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(LinkLost(f"link to {self.host} lost"))
            self._pending.clear()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            got = await pdu.read_pdu(reader)  # FramingError: the stream is lost, reconnect
            self._heard = time.monotonic()
            if got.is_response:
                future = self._pending.pop(got.sequence, None)
                if future is not None and not future.done():
                    future.set_result(got)
                elif got.command_id == pdu.GENERIC_NACK:
                    log.warning("smpp generic_nack", status=pdu.status_name(got.status))
            elif got.command_id == pdu.DELIVER_SM:
                task = asyncio.create_task(self._deliver(got, writer))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
            elif got.command_id == pdu.ENQUIRE_LINK:
                writer.write(Pdu(pdu.ENQUIRE_LINK_RESP, 0, got.sequence).encode())
            elif got.command_id == pdu.UNBIND:
                writer.write(Pdu(pdu.UNBIND_RESP, 0, got.sequence).encode())
                log.info("smpp unbound by the SMSC", host=self.host)
                return
            else:
                log.warning("smpp unexpected command", command=f"0x{got.command_id:08X}")
                writer.write(Pdu(pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, got.sequence).encode())

    async def _deliver(self, got: Pdu, writer: asyncio.StreamWriter) -> None:
        """Hand a deliver_sm on, then answer it: a body we cannot read is refused for good,
        a failure of ours asks the SMSC to deliver it again later."""
        status = pdu.ESME_ROK
        try:
            await self.on_deliver(pdu.parse_deliver_sm(got.body))
        except PduError as exc:
            log.warning("smpp deliver_sm unreadable", error=str(exc), body=got.body[:64].hex())
            status = pdu.ESME_RX_P_APPN
        except Exception:
            log.exception("smpp deliver_sm not handled")
            status = pdu.ESME_RX_T_APPN
        if not writer.is_closing():
            writer.write(Pdu(pdu.DELIVER_SM_RESP, status, got.sequence, b"\0").encode())

    async def _keep_alive(self, writer: asyncio.StreamWriter) -> None:
        """enquire_link after `enquire_link_s` of silence; no answer in time drops the link."""
        while True:
            idle = time.monotonic() - self._heard
            if idle < self.enquire_link_s:
                await asyncio.sleep(self.enquire_link_s - idle)
                continue
            try:
                await self._call(pdu.ENQUIRE_LINK, b"")
            except SessionError:
                log.warning("smpp enquire_link unanswered", host=self.host)
                writer.close()
                return

    async def _call(self, command_id: int, body: bytes, wait: float | None = None) -> Pdu:
        writer = self._writer
        if writer is None or writer.is_closing() or not self.bound.is_set():
            raise NotBound(f"not bound to {self.host}:{self.port}")
        sequence = self._next()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        writer.write(Pdu(command_id, 0, sequence, body).encode())
        try:
            return await asyncio.wait_for(future, wait or self.response_timeout)
        except TimeoutError:
            raise NoAnswer(f"no answer from {self.host} in {self.response_timeout} s") from None
        finally:
            self._pending.pop(sequence, None)

    def _next(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    async def _pace(self) -> None:
        if not self.throughput:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1 / self.throughput
        if slot > now:
            await asyncio.sleep(slot - now)
