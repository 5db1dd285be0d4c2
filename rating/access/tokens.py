"""The queries of API tokens: only their hashes are stored."""

from __future__ import annotations

from sqlalchemy import select

from rating.access.models import ApiToken
from rating.db.records import SessionRepository


class TokenRepository(SessionRepository):
    """API tokens by hash; the caller owns the transaction."""

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The live (not revoked) token with this hash, or None."""
        result = await self.session.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )
        return result.scalar_one_or_none()
