"""SMPP text helpers, without a socket: segments, decoding, parts, receipts, id forms.

Bad inputs tried here: a surrogate pair at a segment's edge, UDHs cut short, a text of more than 255
segments, a GSM-7 escape with no character after it, a UDH with an unknown element, a
receipt text with extra spaces and lower-case names, an over-long submit body field.
"""

from __future__ import annotations

import pytest

from sms.segments import count_segments
from sms.smpp.inbound import id_variants
from sms.smpp.pdu import Address, PduError, ShortMessage, cstring, submit_sm
from sms.smpp.text import decode, part_of, receipt_fields, ucs2_segments


def short(data: bytes, esm_class: int = 0, tlvs: dict[int, bytes] | None = None) -> ShortMessage:
    return ShortMessage("", Address("8613912345678"), Address("1069012345"), esm_class, 8, data,
                        tlvs or {})  # fmt: skip


@pytest.mark.parametrize("length", [1, 70, 71, 134, 135, 201, 202])
def test_segment_counts_agree_with_sms_segments(length: int) -> None:
    text = "评" * length
    assert len(ucs2_segments(text, 1)) == count_segments(text).count


def test_a_surrogate_pair_is_never_cut() -> None:
    text = "评" * 66 + "😀" + "价" * 10  # the emoji's two units straddle unit 67
    segments = ucs2_segments(text, 9)
    assert len(segments[0]) - 6 == 132  # 66 units: the pair moved to the next segment
    assert "".join(s[6:].decode("utf-16-be") for s in segments) == text
    with pytest.raises(ValueError, match="255 segments"):
        ucs2_segments("评" * (67 * 255 + 1), 1)


def test_decoding_by_data_coding() -> None:
    assert decode(0, bytes([0x00, 0x02, 0x11, 0x41, 0x1B, 0x65, 0x1B])) == "@$_A€"
    assert decode(1, b"TD") == "TD" and decode(3, b"caf\xe9") == "café"
    assert decode(15, "退订".encode("gbk")) == "退订"
    assert decode(8, "满意".encode("utf-16-be") + b"\x00") == "满意\ufffd"


def test_parts_by_udh_16_bit_and_by_sar() -> None:
    udh = bytes([9, 0x24, 1, 0x55, 0x08, 4, 0x01, 0x02, 3, 2])  # an unknown IE first
    part = part_of(short(udh + b"\x00A", esm_class=0x40))
    assert (part.reference, part.total, part.number, part.data) == (0x0102, 3, 2, b"\x00A")
    for cut in (udh[:-1], bytes([8]) + udh[1:], bytes([5, 0, 3, 1])):
        with pytest.raises(PduError, match="cut short"):
            part_of(short(cut, esm_class=0x40))
    sar = {0x020C: b"\x00\x07", 0x020E: b"\x02", 0x020F: b"\x01"}
    part = part_of(short(b"\x00B", tlvs=sar))
    assert (part.reference, part.total, part.number) == (7, 2, 1)
    assert part_of(short(b"\x00C")).total == 1


def test_receipt_fields_and_id_forms() -> None:
    text = "id:0123ABC sub:001  dlvrd:000 Submit Date:2612050930 done date:2612050931 stat:UNDELIV"
    fields = receipt_fields(text + " err:006 Text:")
    assert (fields["id"], fields["stat"], fields["err"], fields["done date"]) == (
        "0123ABC",
        "UNDELIV",
        "006",
        "2612050931",
    )
    assert id_variants("40961") == ["40961", "a001", "A001"]
    assert id_variants("a001") == ["a001", "40961"]
    assert id_variants("msg-1") == ["msg-1"]


def test_submit_body_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="source_addr takes at most 20"):
        submit_sm(Address("1" * 21), Address("86139"), b"", esm_class=0, data_coding=8)
    with pytest.raises(ValueError, match="254 at most"):
        submit_sm(Address("106"), Address("86139"), bytes(255), esm_class=0, data_coding=8)
    assert cstring("pingjia", 16, "system_id") == b"pingjia\0"
