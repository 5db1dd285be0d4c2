"""Audit lines: who did what to which record, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rating.access.models import AuditEntry


def audit_values(
    at: datetime, actor: str, action: str, entity: str, entity_id: str, **data: Any
) -> dict[str, Any]:
    """An audit line's values, for a batch's Core insert (Repository.insert_rows)."""
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
