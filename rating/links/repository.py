"""The queries of rating links: hand out (in bulk, in a sweep's transaction), open, use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import selectinload

from rating.cases.models import Evaluation
from rating.db.records import SessionRepository
from rating.links.models import RatingLink

LINKS = RatingLink.metadata.tables["rating_links"]


class LinkRepository(SessionRepository):
    """Rating links by token or evaluation; the caller owns the transaction."""

    async def tokens_for(self, evaluation_ids: Iterable[int]) -> dict[int, str]:
        """The tokens these evaluations already have, by evaluation id."""
        wanted = list(evaluation_ids)
        if not wanted:
            return {}
        query = select(RatingLink.evaluation_id, RatingLink.token).where(
            RatingLink.evaluation_id.in_(wanted)
        )
        return {e: t for e, t in (await self.session.execute(query)).all()}

    async def add_many(self, links: Sequence[dict[str, Any]]) -> None:
        """New links (token, evaluation_id, created_at, expires_at): one executemany."""
        if links:
            await self.session.execute(insert(LINKS), list(links))

    async def opened(self, token: str) -> tuple[RatingLink, Evaluation] | None:
        """The link and the evaluation it opens (with its case), or None for no such token."""
        result = await self.session.execute(
            select(RatingLink, Evaluation)
            .join(Evaluation, Evaluation.id == RatingLink.evaluation_id)
            .options(selectinload(Evaluation.case))
            .where(RatingLink.token == token)
        )
        row = result.first()
        return (row[0], row[1]) if row else None

    async def use(self, token: str, at: datetime) -> bool:
        """Mark the link used; False when it already was (or does not exist)."""
        result = await self.session.execute(
            update(RatingLink)
            .where(RatingLink.token == token, RatingLink.used_at.is_(None))
            .values(used_at=at)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
