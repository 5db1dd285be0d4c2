"""What comes in on the session, in our words: delivery receipts settled per message (however
many segments it took), and handset messages joined from their parts and given a stable key.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from sms.providers import DeliveryReport, SmsStatus
from sms.smpp.pdu import TAG_MESSAGE_STATE, TAG_RECEIPTED_MESSAGE_ID, ShortMessage
from sms.smpp.text import decode, part_of, receipt_fields

# Receipt `stat:` words (SMPP 3.4 appendix B) in our vocabulary; ENROUTE/ACCEPTD are not final.
STATS: dict[str, SmsStatus | None] = {
    "DELIVRD": "delivered",
    "UNDELIV": "undelivered",
    "EXPIRED": "undelivered",
    "DELETED": "undelivered",
    "REJECTD": "failed",
    "UNKNOWN": "failed",
    "ENROUTE": None,
    "ACCEPTD": None,
}
# message_state TLV values (spec 5.2.28) as their stat words.
STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
          7: "UNKNOWN", 8: "REJECTD"}  # fmt: skip


@dataclass(frozen=True)
class Receipt:
    smsc_id: str
    stat: str
    error: str | None


def read_receipt(message: ShortMessage) -> Receipt | None:
    """The receipted id and stat, from the TLVs when present, else from the text."""
    fields = receipt_fields(message.payload.decode("latin-1"))
    smsc_id = message.tlvs.get(TAG_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\0").decode("latin-1")
    state = message.tlvs.get(TAG_MESSAGE_STATE)
    stat = STATES.get(state[0], "UNKNOWN") if state else fields.get("stat", "").upper()
    smsc_id = smsc_id or fields.get("id", "")
    if not smsc_id or not stat:
        return None
    err = fields.get("err")
    return Receipt(smsc_id, stat, f"{stat} err:{err}" if err else stat)


def id_variants(smsc_id: str) -> list[str]:
    """The id as sent, then as the other base: some SMSCs answer submit_sm_resp in hex and
    write receipts in decimal, or the other way round."""
    if smsc_id.isdigit():  # decimal here, maybe hex in the submit_sm_resp
        return [smsc_id, format(int(smsc_id), "x"), format(int(smsc_id), "X")]
    if smsc_id and len(smsc_id) <= 16 and all(c in "0123456789abcdefABCDEF" for c in smsc_id):
        return [smsc_id, str(int(smsc_id, 16))]  # hex with a letter: maybe decimal there
    return [smsc_id]


@dataclass
class _Sent:
    provider_id: str  # the first segment's id, what SendReceipt carried
    segments: tuple[str, ...]
    delivered: set[str] = field(default_factory=set)
    reported: bool = False


class Receipts:
    """Each segment's SMSC id mapped to its message, so a message is reported once: at its
    first segment that failed, or when every segment is delivered."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._by_id: OrderedDict[str, _Sent] = OrderedDict()

    def sent(self, segment_ids: list[str]) -> None:
        entry = _Sent(segment_ids[0], tuple(segment_ids))
        for smsc_id in segment_ids:
            self._by_id[smsc_id] = entry
        while len(self._by_id) > self.capacity:
            self._by_id.popitem(last=False)

    def settle(self, receipt: Receipt) -> DeliveryReport | None:
        """The report to hand on now, or None (not final, other segments pending, or said)."""
        status = STATS.get(receipt.stat, "failed")
        if status is None:
            return None
        error = None if status == "delivered" else receipt.error
        key = next((v for v in id_variants(receipt.smsc_id) if v in self._by_id), None)
        if key is None:  # sent before a restart: its id is the message's when alone
            return DeliveryReport(receipt.smsc_id, status, error)
        entry = self._by_id[key]
        if entry.reported:
            return None
        if status == "delivered":
            entry.delivered.add(key)
            if len(entry.delivered) < len(entry.segments):
                return None
        entry.reported = True
        return DeliveryReport(entry.provider_id, status, error)

    def unsettle(self, receipt: Receipt) -> None:
        """The report could not be handed on: let the SMSC's next try report it."""
        key = next((v for v in id_variants(receipt.smsc_id) if v in self._by_id), None)
        if key is not None:
            self._by_id[key].reported = False


@dataclass(frozen=True)
class Mo:
    sender: str
    to_address: str
    text: str
    dedup_key: str


class Replies:
    """Joins multi-part handset messages and keys each message: the same sender, number and
    text within `repeat_s` (an SMSC delivering again after a lost deliver_sm_resp) keep the
    first one's key; parts waiting longer than `parts_s` are dropped."""

    def __init__(self, repeat_s: float = 600.0, parts_s: float = 600.0) -> None:
        self.repeat_s, self.parts_s = repeat_s, parts_s
        self._parts: dict[tuple[str, str, int, int], tuple[float, dict[int, bytes]]] = {}
        self._recent: dict[tuple[str, str, str], tuple[float, str]] = {}

    def take(self, message: ShortMessage, now: datetime) -> Mo | None:
        """The whole message once its last part is in, else None."""
        part = part_of(message)
        data = part.data
        sender, to = message.source.digits, message.dest.digits
        clock = time.monotonic()
        if part.total > 1:
            key = (sender, to, part.reference, part.total)
            self._parts = {k: v for k, v in self._parts.items() if clock - v[0] < self.parts_s}
            parts = self._parts.setdefault(key, (clock, {}))[1]
            parts[part.number] = data
            if len(parts) < part.total:
                return None
            del self._parts[key]
            data = b"".join(parts[n] for n in sorted(parts))
        text = decode(message.data_coding, data)
        self._recent = {k: v for k, v in self._recent.items() if clock - v[0] < self.repeat_s}
        seen = self._recent.get((sender, to, text))
        if seen is not None:
            return Mo(sender, to, text, seen[1])
        digest = hashlib.sha256(f"{sender}|{to}|{text}|{now.isoformat()}".encode()).hexdigest()
        dedup_key = f"smpp:{digest[:32]}"
        self._recent[(sender, to, text)] = (clock, dedup_key)
        return Mo(sender, to, text, dedup_key)
