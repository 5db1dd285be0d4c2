"""Message text over SMPP: UCS-2 segments with a concatenation UDH, decoding what handsets
send (by data_coding, UDH or SAR parts), and reading delivery receipt text (spec appendix B).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from sms.smpp.pdu import (
    ESM_UDHI,
    TAG_SAR_MSG_REF_NUM,
    TAG_SAR_SEGMENT_SEQNUM,
    TAG_SAR_TOTAL_SEGMENTS,
    PduError,
    ShortMessage,
)

UCS2 = 0x08
SINGLE_OCTETS = 140  # 70 UTF-16 units alone
SEGMENT_OCTETS = 134  # 67 units beside the 6-octet UDH

# GSM 03.38 default alphabet, unpacked (one septet per octet, as SMSCs hand it over); the
# escape (0x1B) reads as nothing.
GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_ESCAPED = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
                0x3E: "]", 0x40: "|", 0x65: "€"}  # fmt: skip


def ucs2_segments(text: str, reference: int) -> list[bytes]:
    """The short_message of each segment: one without a UDH when the text fits 70 units, else
    67 units each behind `05 00 03 ref total seq` (a surrogate pair is never cut in two)."""
    data = text.encode("utf-16-be")
    if len(data) <= SINGLE_OCTETS:
        return [data]
    chunks: list[bytes] = []
    while data:
        cut = SEGMENT_OCTETS
        if len(data) > cut and 0xD8 <= data[cut - 2] <= 0xDB:  # a high surrogate ends it
            cut -= 2
        chunks.append(data[:cut])
        data = data[cut:]
    if len(chunks) > 255:
        raise ValueError(f"{len(text)} characters take more than 255 segments")
    total = len(chunks)
    return [bytes([5, 0, 3, reference & 0xFF, total, n]) + c for n, c in enumerate(chunks, 1)]


def decode(data_coding: int, data: bytes) -> str:
    """A handset's text by its data_coding: UCS-2 (8), the GSM default alphabet (0), ASCII
    (1), Latin-1 (3), GBK (15, as Chinese SMSCs use it); other codings read as Latin-1."""
    if data_coding == UCS2:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == 0x0F:
        return data.decode("gbk", errors="replace")
    if data_coding == 0x00:
        return _gsm7(data)
    if data_coding == 0x01:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


def _gsm7(data: bytes) -> str:
    chars: list[str] = []
    escaped = False
    for octet in data:
        if escaped:
            chars.append(GSM7_ESCAPED.get(octet & 0x7F, " "))
            escaped = False
        elif octet & 0x7F == 0x1B:
            escaped = True
        else:
            chars.append(GSM7[octet & 0x7F])
    return "".join(chars)


@dataclass(frozen=True)
class Part:
    """Where one part sits in a multi-part message; `total` 1 for a message alone."""

    reference: int
    total: int
    number: int
    data: bytes  # user data without the UDH


def part_of(message: ShortMessage) -> Part:
    """Split off a concatenation UDH (IE 0x00 or 0x08) or read the SAR TLVs; PduError when
    the UDH is cut short (answered as a permanent error: delivering it again cannot help)."""
    data = message.payload
    if message.esm_class & ESM_UDHI and data:
        header_length = data[0]
        header, data = data[1 : 1 + header_length], data[1 + header_length :]
        at = 0
        while at + 2 <= len(header):
            ie, length = header[at], header[at + 1]
            value = header[at + 2 : at + 2 + length]
            if len(value) < length or len(header) < header_length:
                raise PduError(f"UDH of {header_length} octets cut short")
            if ie == 0x00 and length == 3:
                return Part(value[0], value[1], value[2], data)
            if ie == 0x08 and length == 4:
                return Part(struct.unpack("!H", value[:2])[0], value[2], value[3], data)
            at += 2 + length
        return Part(0, 1, 1, data)
    sar = message.tlvs
    if TAG_SAR_MSG_REF_NUM in sar and TAG_SAR_TOTAL_SEGMENTS in sar:
        reference = int.from_bytes(sar[TAG_SAR_MSG_REF_NUM], "big")
        total = int.from_bytes(sar[TAG_SAR_TOTAL_SEGMENTS], "big")
        number = int.from_bytes(sar.get(TAG_SAR_SEGMENT_SEQNUM, b"\1"), "big")
        return Part(reference, total, number, data)
    return Part(0, 1, 1, data)


_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text):\s*(\S*)", re.IGNORECASE)


def receipt_fields(text: str) -> dict[str, str]:
    """The fields of a receipt's text, `id:… sub:… dlvrd:… submit date:… done date:… stat:…
    err:… text:…`, lower-case names; missing ones are absent."""
    return {name.lower(): value for name, value in _FIELD.findall(text)}
