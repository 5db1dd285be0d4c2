"""A fake SMSC on 127.0.0.1 that speaks SMPP 3.4 PDUs, written from the spec apart from our
client's codec (sms/smpp/pdu.py) so a test of one against the other means something.

It answers bind_transceiver, submit_sm (message ids in hex), enquire_link, unbind and
answers what it does not know with generic_nack; it sends deliver_sm (receipts, handset
messages) and raw bytes; it records every PDU it got, and can be told to refuse binds,
refuse or throttle submits, answer late (`delay`), or drop every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from typing import Any

BIND_TRANSCEIVER, SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x09, 0x04, 0x05, 0x06, 0x15
RESP, GENERIC_NACK = 0x80000000, 0x80000000
THROTTLED = 0x58


@dataclass
class Received:
    command_id: int
    status: int
    sequence: int
    fields: dict[str, Any] = field(default_factory=dict)


def _cstrings(body: bytes, count: int, at: int = 0) -> tuple[list[str], int]:
    found = []
    for _ in range(count):
        end = body.index(b"\0", at)
        found.append(body[at:end].decode("ascii"))
        at = end + 1
    return found, at


def _submit_fields(body: bytes) -> dict[str, Any]:
    """submit_sm's mandatory fields (SMPP 3.4, 4.4.1), read by hand."""
    (service_type,), at = _cstrings(body, 1)
    source_ton, source_npi = body[at], body[at + 1]
    (source,), at = _cstrings(body, 1, at + 2)
    dest_ton, dest_npi = body[at], body[at + 1]
    (dest,), at = _cstrings(body, 1, at + 2)
    esm_class, _protocol, _priority = body[at : at + 3]
    _times, at = _cstrings(body, 2, at + 3)
    registered, _replace, data_coding, _default, length = body[at : at + 5]
    short = body[at + 5 : at + 5 + length]
    return {
        "service_type": service_type, "source_addr": source, "source_ton": source_ton,
        "source_npi": source_npi, "destination_addr": dest, "dest_ton": dest_ton,
        "dest_npi": dest_npi, "esm_class": esm_class, "registered_delivery": registered,
        "data_coding": data_coding, "short_message": short,
    }  # fmt: skip


def deliver_sm_body(
    source: str,
    dest: str,
    short_message: bytes,
    *,
    esm_class: int = 0,
    data_coding: int = 8,
    tlvs: bytes = b"",
) -> bytes:
    """A deliver_sm body as an SMSC writes it (4.6.1)."""
    return (
        b"\0" + bytes([1, 1]) + source.encode() + b"\0" + bytes([0, 0]) + dest.encode() + b"\0"
        + bytes([esm_class, 0, 0]) + b"\0\0" + bytes([0, 0, data_coding, 0, len(short_message)])
        + short_message + tlvs
    )  # fmt: skip


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


def pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack("!IIII", 16 + len(body), command_id, status, sequence) + body


class _Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.bound = False
        self.waiting: dict[int, asyncio.Future[int]] = {}


class FakeSmsc:
    def __init__(
        self, *, delay: float = 0.0, system_id: str = "pingjia", password: str = "pw12345"
    ) -> None:
        self.delay = delay
        self.system_id, self.password = system_id, password
        self.received: list[Received] = []
        self.refuse_bind: int | None = None  # a command_status to answer binds with
        self.refusals: list[int] = []  # statuses for the next submits, first first
        self.deaf = False  # True: enquire_link goes unanswered, as on a half-dead link
        self.binds = 0
        self.submitted = 0
        self.outstanding = 0  # requests taken, answers not yet written (with a delay)
        self.most_outstanding = 0
        self.links: list[_Link] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sequence = 0x1000
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop(self) -> None:
        """Close every connection without a word, as a cut link looks."""
        for link in self.links:
            link.writer.close()
        self.links.clear()

    def throttle(self, times: int) -> None:
        self.refusals.extend([THROTTLED] * times)

    def commands(self, command_id: int) -> list[Received]:
        return [r for r in self.received if r.command_id == command_id]

    async def wait_bound(self, binds: int = 1) -> None:
        """Until `binds` binds have happened and a link is bound (5 s at most)."""
        async with asyncio.timeout(5):
            while self.binds < binds or not any(link.bound for link in self.links):
                self._bound.clear()
                await self._bound.wait()

    async def deliver(self, body: bytes) -> int:
        """Send a deliver_sm on the bound link; the status of its deliver_sm_resp."""
        link = next(link for link in self.links if link.bound)
        self._sequence += 1
        answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        link.waiting[self._sequence] = answered
        link.writer.write(pdu(DELIVER_SM, 0, self._sequence, body))
        return await asyncio.wait_for(answered, 5)

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are on the bound link (bad PDUs)."""
        next(link for link in self.links if link.bound).writer.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(reader, writer)
        self.links.append(link)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length, command_id, status, sequence = struct.unpack(
                    "!IIII", await reader.readexactly(16)
                )
                body = await reader.readexactly(length - 16)
                self._handle(link, Received(command_id, status, sequence), body)
        link.bound = False
        writer.close()

    def _handle(self, link: _Link, got: Received, body: bytes) -> None:
        self.received.append(got)
        if got.command_id & RESP:
            waiting = link.waiting.pop(got.sequence, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(got.status)
            return
        if got.command_id == BIND_TRANSCEIVER:
            (system_id, password, system_type), _ = _cstrings(body, 3)
            got.fields = {"system_id": system_id, "password": password, "system_type": system_type}
            refused = self.refuse_bind
            if refused is None and (system_id, password) != (self.system_id, self.password):
                refused = 0x0E  # ESME_RINVPASWD
            if refused is None:
                link.bound = True
                self.binds += 1
                self._bound.set()
            self._answer(link, got, refused or 0, b"fake-smsc\0")
        elif got.command_id == SUBMIT_SM:
            got.fields = _submit_fields(body)
            status = self.refusals.pop(0) if self.refusals else 0
            self.submitted += 1
            message_id = f"{0xA000 + self.submitted:x}" if not status else ""
            self._answer(link, got, status, message_id.encode() + b"\0")
        elif got.command_id == ENQUIRE_LINK:
            if not self.deaf:
                self._answer(link, got, 0, b"")
        elif got.command_id == UNBIND:
            self._answer(link, got, 0, b"")
            link.bound = False
        else:
            link.writer.write(pdu(GENERIC_NACK, 0x03, got.sequence))

    def _answer(self, link: _Link, got: Received, status: int, body: bytes) -> None:
        answer = pdu(got.command_id | RESP, status, got.sequence, body)
        if not self.delay:
            link.writer.write(answer)
            return
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)
        task = asyncio.create_task(self._later(link, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, link: _Link, answer: bytes) -> None:
        await asyncio.sleep(self.delay)
        self.outstanding -= 1
        if not link.writer.is_closing():
            link.writer.write(answer)
