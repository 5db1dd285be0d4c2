"""Idempotency keys: one key, one request; a key reused for another request is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.models import IdempotencyKey
from rating.errors import InvalidInput

MAX_KEY_CHARS = 100


def body_hash(route: str, body: dict[str, Any]) -> str:
    """SHA-256 over the route and the body in canonical JSON (key order, spacing ignored)."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()


class IdempotencyKeys:
    """Claims keys in their own transaction, before the request they stand for runs."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.clock = clock

    async def claim(self, key: str, route: str, body: dict[str, Any], actor: str) -> bool:
        """True for a new key, False for a retry of the same request; InvalidInput
        (`idempotency_key_reused`) when the key was sent before with another route or body."""
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise InvalidInput(
                f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters",
                code="invalid_idempotency_key",
                params={"max": MAX_KEY_CHARS},
            )
        digest = body_hash(route, body)
        async with self.sessions() as session:
            found = await session.get(IdempotencyKey, key)
            if found is None:
                session.add(
                    IdempotencyKey(
                        key=key,
                        route=route,
                        body_hash=digest,
                        actor=actor,
                        created_at=self.clock(),
                    )
                )
                try:
                    await session.commit()
                    return True
                except IntegrityError:  # the same key claimed meanwhile: compare with that one
                    await session.rollback()
                    found = (
                        await session.execute(
                            select(IdempotencyKey).where(IdempotencyKey.key == key)
                        )
                    ).scalar_one()
        if found.route != route or found.body_hash != digest:
            raise InvalidInput(
                f"Idempotency-Key {key!r} was sent before with another request "
                f"({found.route}, another body); a key stands for one request: use a new key",
                code="idempotency_key_reused",
                params={"key": key, "route": found.route},
            )
        return False
