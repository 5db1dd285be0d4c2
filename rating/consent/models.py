"""Contact consent: the numbers that asked to be left alone, which every channel obeys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from rating.db.base import Base, UtcDateTime


class ContactOptOut(Base):
    """A number that asked for no more messages or calls (TD, 退订, STOP…), by its keyed hash.

    Asked by the SMS sends and by the IVR's survey calls alike; the table keeps the name it was
    born with (`sms_opt_outs`), when only SMS asked it."""

    __tablename__ = "sms_opt_outs"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source_ref: Mapped[str] = mapped_column(String(128))
