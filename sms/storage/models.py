"""The SMS tables: messages we send and inbound replies seen.

Opt-outs are the domain's contact consent (rating/consent/), which every channel asks; the
rating links an invitation carries are the domain's too (rating/links/), which the rating page
redeems.

Phone numbers appear only as their keyed hash (lookups) and Fernet ciphertext (sending).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from rating.db.base import Base, UtcDateTime, utcnow

# Message kinds we start ourselves: these count against the daily cap and keep quiet hours.
STARTED_KINDS = ("invitation", "reminder")
# Messages other parts ask for through SmsService.send (sms/notices.py): second-rating
# invitations to citizens (capped like the above) and deadline alerts to agency staff (not).
NOTICE_KINDS = ("second_invite", "notice", "alert")
CAPPED_KINDS = (*STARTED_KINDS, "second_invite", "notice")
# A status callback may arrive out of order; a later stage never goes back to an earlier one.
# `pending` and `sending` are ours before the provider has the message; the rest is the
# delivery vocabulary every provider's words are mapped to (sms.providers.SmsStatus).
STATUS_RANK = {
    "pending": 0,
    "sending": 1,
    "queued": 2,
    "sent": 3,
    "failed": 4,
    "undelivered": 4,
    "delivered": 5,
}


class SmsMessage(Base):
    """One message we send; `dedupe_key` makes every send at most once."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        Index("ix_sms_messages_phone_day", "phone_hash", "created_at"),
        Index("ix_sms_messages_evaluation_kind", "evaluation_id", "kind"),
        Index("ix_sms_messages_retry", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    phone_hash: Mapped[str] = mapped_column(String(64))
    phone_enc: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    ext_code: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    provider: Mapped[str] = mapped_column(String(16))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SmsInbound(Base):
    """A reply we received, once per provider message id (providers retry their callbacks)."""

    __tablename__ = "sms_inbound"
    __table_args__ = (
        # The sweep's look for replies whose handler died: only unhandled rows are indexed.
        Index(
            "ix_sms_inbound_unhandled",
            "claimed_at",
            postgresql_where=text("handled_at IS NULL"),
            sqlite_where=text("handled_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)  # to answer; None before 0006
    to_number: Mapped[str | None] = mapped_column(String(64))  # as the provider gave it
    # The 扩展码 the reply was sent to, given apart by the provider or read from `to_number`
    # by it (SmsProvider.extension); it names the evaluation (docs/sms.md, "Replies").
    extension: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # numbers in it are masked
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    outcome: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)  # by the handler, or the sweep
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
