"""The queries of API tokens: only their hashes are stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from rating.access.models import ApiToken
from rating.db.records import SessionRepository

# Last-used times are written at most this often per token: a write per request would cost
# more than the answer it records.
TOUCH_EVERY = timedelta(minutes=1)


class TokenRepository(SessionRepository):
    """API tokens by hash; the caller owns the transaction."""

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The live (not revoked) token with this hash, or None."""
        result = await self.session.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )
        return result.scalar_one_or_none()

    async def all_tokens(self) -> list[ApiToken]:
        """Every token, revoked ones too, oldest first."""
        result = await self.session.execute(select(ApiToken).order_by(ApiToken.id))
        return list(result.scalars().all())

    async def tokens_named(self, name: str) -> list[ApiToken]:
        result = await self.session.execute(
            select(ApiToken).where(ApiToken.name == name).order_by(ApiToken.id)
        )
        return list(result.scalars().all())

    async def token_by_id(self, token_id: int) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)

    async def revoke(self, token_id: int, now: datetime) -> bool:
        """Revoke a live token; False when it was revoked already."""
        result = await self.session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch(self, token_id: int, now: datetime) -> None:
        """Record a use, unless one was recorded less than TOUCH_EVERY ago (by any process)."""
        await self.session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY),
            )
            .values(last_used_at=now)
        )
