"""The table of the IVR part's outbound calls (migration 0002_ivr).

A row per Originate pingjia asks Asterisk for: an outbound rating call (`survey`, 电话评价) or
an agent's click-to-call back (`callback`, 回访). It holds no phone number: the number is
decrypted only to build the Originate and is never stored beside the call.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rating.cases.models import Case
from rating.db.base import Base, UtcDateTime, utcnow

CALL_KINDS = ("survey", "callback")
# requested: row written, Originate not answered yet; originated: Asterisk queued it;
# unknown: sent, Asterisk has not said whether it places it (it may); answered / failed: its
# OriginateResponse (or its refusal) came back (ivr/call_records.py).
CALL_STATUSES = ("requested", "originated", "unknown", "failed", "answered")


class OutboundCall(Base):
    """One Originate and what became of it."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    action_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(128))
    agent_extension: Mapped[str | None] = mapped_column(String(16))
    channel_uniqueid: Mapped[str | None] = mapped_column(String(64))
    # A call-back's citizen leg: Dial()'s DIALSTATUS from the dialplan (ANSWER: reached).
    dial_status: Mapped[str | None] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
