"""Outbox rows for the central store, built one way for every cause that writes one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from rating.cases.models import Evaluation, Rating
from rating.outbox.models import OutboxItem
from rating.outbox.national import rating_record
from rating.policy.profile import Profile
from rating.privacy import PhoneVault


def new_key(kind: str) -> str:
    """A central-store Idempotency-Key, made once when its outbox row is written and stored
    with it (so every retry sends it again). A UUID4, not the row id: ids repeat across
    installations, and the store would drop another city's `rating-1` as a repeat."""
    return f"{kind}-{uuid.uuid4()}"


def central_values(
    topic: str, evaluation_id: int, idempotency_key: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An outbox row on the evaluation's ordering key, so the store hears a rating before its
    results: the values, for a batch's Core insert (rating/ratings/writer.py)."""
    return {
        "topic": topic,
        "ordering_key": f"evaluation:{evaluation_id}",
        "idempotency_key": idempotency_key,
        "payload": payload,
        "next_attempt_at": now,
        "created_at": now,
    }


def central_item(
    topic: str, evaluation_id: int, idempotency_key: str, payload: dict[str, Any], now: datetime
) -> OutboxItem:
    """The same row as an object, for a session."""
    return OutboxItem(**central_values(topic, evaluation_id, idempotency_key, payload, now))


def rating_values(
    profile: Profile,
    vault: PhoneVault,
    evaluation: Evaluation,
    rating: Rating,
    now: datetime,
    *,
    update: bool = False,
) -> dict[str, Any]:
    """The national record of a rating; `update` re-sends it after a late reason."""
    case = evaluation.case
    # The clear number goes out only where the profile says so: decrypt it only then (a
    # Fernet decrypt was a fifth of a batched rating's CPU, for a number left unused).
    phone = None
    if profile.central_store.send_phone_in_clear and case.phone_enc:
        phone = vault.decrypt(case.phone_enc)
    payload = rating_record(profile, case, rating, phone)
    if update:
        payload["update"] = True  # the store replaces comment and tags of (case_no, attempt)
        return central_values(
            "central.rating.update", evaluation.id, new_key("rating-update"), payload, now
        )
    return central_values("central.rating", evaluation.id, new_key("rating"), payload, now)
