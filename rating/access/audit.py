"""Audit lines: who did what to which record, and when.

Every room writes its audit lines here, in the caller's transaction: `AuditLog(session).record`
for one line, `audit_values` for a batch's plain-row insert (`SessionRepository.insert_rows`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rating.access.models import AuditEntry
from rating.db.records import SessionRepository

ENTITY_ID_CHARS = 64  # audit_log.entity_id's column


def audit_values(
    at: datetime, actor: str, action: str, entity: str, entity_id: str, **data: Any
) -> dict[str, Any]:
    """An audit line's values, for a batch's Core insert (Repository.insert_rows).

    An id longer than its column (an agency's name may have 128 characters) is cut to fit,
    ending in `…`, and kept whole in `data["entity_id"]`: PostgreSQL would refuse the line
    (and with it the change it records), SQLite would store it whole."""
    if len(entity_id) > ENTITY_ID_CHARS:
        data = {**data, "entity_id": entity_id}
        entity_id = entity_id[: ENTITY_ID_CHARS - 1] + "…"
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "data": data,
    }


def audit_entry(
    at: datetime, actor: str, action: str, entity: str, entity_id: str, **data: Any
) -> AuditEntry:
    return AuditEntry(**audit_values(at, actor, action, entity, entity_id, **data))


class AuditLog(SessionRepository):
    """The audit log over one session; the caller owns the transaction."""

    def record(
        self, at: datetime, actor: str, action: str, entity: str, entity_id: str, **data: Any
    ) -> None:
        """One audit line, added to the session (written with the caller's change)."""
        self.session.add(audit_entry(at, actor, action, entity, entity_id, **data))
