"""SMPP 3.4 PDUs: the header, the bodies we send, and the bodies we read (spec sections 4, 5)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

HEADER = struct.Struct("!IIII")  # command_length, command_id, command_status, sequence_number
MAX_PDU = 64 * 1024 + 1024  # a message_payload TLV holds up to 64 KiB

BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
GENERIC_NACK = 0x80000000
RESPONSE_BIT = 0x80000000

# command_status values we act on (spec 5.1.3); any other value is carried as a number.
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RINVDSTADR = 0x0B
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
ESME_RX_P_APPN = 0x65
STATUS_NAMES = {
    ESME_ROK: "ESME_ROK",
    ESME_RINVMSGLEN: "ESME_RINVMSGLEN",
    ESME_RINVCMDID: "ESME_RINVCMDID",
    ESME_RINVBNDSTS: "ESME_RINVBNDSTS",
    ESME_RSYSERR: "ESME_RSYSERR",
    ESME_RINVDSTADR: "ESME_RINVDSTADR",
    ESME_RBINDFAIL: "ESME_RBINDFAIL",
    ESME_RINVPASWD: "ESME_RINVPASWD",
    ESME_RINVSYSID: "ESME_RINVSYSID",
    ESME_RMSGQFUL: "ESME_RMSGQFUL",
    ESME_RTHROTTLED: "ESME_RTHROTTLED",
    ESME_RX_T_APPN: "ESME_RX_T_APPN",
    ESME_RX_P_APPN: "ESME_RX_P_APPN",
}

# TLV tags (spec 5.3.2)
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_MESSAGE_STATE = 0x0427

ESM_UDHI = 0x40
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04
INTERFACE_VERSION = 0x34


class PduError(ValueError):
    """Bytes that are not the PDU they claim to be."""


class FramingError(PduError):
    """A header whose length cannot be right: the byte stream can no longer be trusted."""


def status_name(status: int) -> str:
    """The spec's name of a command_status, or its number in hex."""
    return STATUS_NAMES.get(status, f"0x{status:08X}")


@dataclass(frozen=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    def encode(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), *self.head) + self.body

    @property
    def head(self) -> tuple[int, int, int]:
        return self.command_id, self.status, self.sequence

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU on the stream; IncompleteReadError at its end, FramingError on nonsense."""
    header = await reader.readexactly(HEADER.size)
    length, command_id, status, sequence = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU:
        raise FramingError(f"PDU length {length} (command 0x{command_id:08X})")
    return Pdu(command_id, status, sequence, await reader.readexactly(length - HEADER.size))


def cstring(value: str, limit: int, what: str) -> bytes:
    """A C-Octet String of at most `limit` octets, NUL included (ASCII fields only)."""
    data = value.encode("ascii")
    if len(data) >= limit:
        raise ValueError(f"{what} takes at most {limit - 1} characters: {value!r}")
    return data + b"\0"


def bind_transceiver(system_id: str, password: str, system_type: str) -> bytes:
    """bind_transceiver's body (spec 4.1.5): no address range, TON/NPI unknown."""
    return (
        cstring(system_id, 16, "system_id")
        + cstring(password, 9, "password")
        + cstring(system_type, 13, "system_type")
        + bytes([INTERFACE_VERSION, 0, 0])
        + b"\0"
    )


@dataclass(frozen=True)
class Address:
    digits: str
    ton: int = 0
    npi: int = 0


def submit_sm(
    source: Address,
    dest: Address,
    short_message: bytes,
    *,
    esm_class: int,
    data_coding: int,
    registered_delivery: int = 1,
) -> bytes:
    """submit_sm's body (spec 4.4.1), no TLVs: service_type default, immediate, default validity."""
    if len(short_message) > 254:
        raise ValueError(f"short_message of {len(short_message)} octets (254 at most)")
    return (
        b"\0"
        + bytes([source.ton, source.npi])
        + cstring(source.digits, 21, "source_addr")
        + bytes([dest.ton, dest.npi])
        + cstring(dest.digits, 21, "destination_addr")
        + bytes([esm_class, 0, 0])
        + b"\0\0"
        + bytes([registered_delivery, 0, data_coding, 0, len(short_message)])
        + short_message
    )


class _Reader:
    """Reads a body field by field; every overrun is a PduError naming the field."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def cstring(self, limit: int, what: str) -> str:
        end = self.data.find(b"\0", self.at, self.at + limit)
        if end < 0:
            raise PduError(f"{what}: no NUL within {limit} octets")
        raw = self.data[self.at : end]
        self.at = end + 1
        return raw.decode("latin-1")

    def octet(self, what: str) -> int:
        if self.at >= len(self.data):
            raise PduError(f"{what}: body ends early")
        self.at += 1
        return self.data[self.at - 1]

    def octets(self, count: int, what: str) -> bytes:
        if self.at + count > len(self.data):
            raise PduError(f"{what}: {count} octets announced, {len(self.data) - self.at} left")
        self.at += count
        return self.data[self.at - count : self.at]

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.at < len(self.data):
            if self.at + 4 > len(self.data):
                raise PduError("TLV header cut short")
            tag, length = struct.unpack_from("!HH", self.data, self.at)
            self.at += 4
            found[tag] = self.octets(length, f"TLV 0x{tag:04X}")
        return found


def message_id(body: bytes) -> str:
    """submit_sm_resp's message_id; an empty or cut body (as some refusals have) gives ""."""
    end = body.find(b"\0", 0, 65)
    return body[: end if end >= 0 else 0].decode("latin-1")


@dataclass(frozen=True)
class ShortMessage:
    """A deliver_sm's body: a delivery receipt or a message from a handset (spec 4.6.1)."""

    service_type: str
    source: Address
    dest: Address
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_receipt(self) -> bool:
        return self.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT

    @property
    def payload(self) -> bytes:
        """The user data: short_message, or the message_payload TLV when that is empty."""
        return self.short_message or self.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")


def parse_deliver_sm(body: bytes) -> ShortMessage:
    """Read a deliver_sm body; PduError when it is not one."""
    read = _Reader(body)
    service_type = read.cstring(6, "service_type")
    source = Address(ton=read.octet("source_addr_ton"), npi=read.octet("source_addr_npi"),
                     digits=read.cstring(21, "source_addr"))  # fmt: skip
    dest = Address(ton=read.octet("dest_addr_ton"), npi=read.octet("dest_addr_npi"),
                   digits=read.cstring(21, "destination_addr"))  # fmt: skip
    esm_class = read.octet("esm_class")
    read.octets(2, "protocol_id, priority_flag")
    read.cstring(17, "schedule_delivery_time")
    read.cstring(17, "validity_period")
    read.octets(2, "registered_delivery, replace_if_present_flag")
    data_coding = read.octet("data_coding")
    read.octet("sm_default_msg_id")
    short_message = read.octets(read.octet("sm_length"), "short_message")
    return ShortMessage(
        service_type, source, dest, esm_class, data_coding, short_message, read.tlvs()
    )
