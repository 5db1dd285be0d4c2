"""Queries of the background sweeps: leases on their items, and the default-rating claims.

Claims are safe with several processes on PostgreSQL: candidates are read `FOR UPDATE SKIP
LOCKED` (another process's in-flight claim is skipped, not waited for) and leased in the same
transaction, so a crashed process's items come back when the lease runs out. SQLite ignores the
locking clause; it serves one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import contains_eager

from rating.cases.models import Case, Evaluation
from rating.db.bulk_sql import unindexed
from rating.db.records import SessionRepository
from rating.sweeps.models import SweepClaim

DEFAULT_SWEEP = "default_rating"


def due_defaults_query(now: datetime, limit: int) -> Select[int, str]:
    """Pending evaluations past their default time without a live lease, locked, soonest first."""
    live = leased(DEFAULT_SWEEP, now)
    return (
        select(Evaluation.id, Case.case_no)
        .join(Case, Case.id == Evaluation.case_id)
        .where(Evaluation.status == "pending", Evaluation.default_due_at <= now, ~live)
        .order_by(Evaluation.default_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Evaluation)
    )


class ClaimRepository(SessionRepository):
    """Leases on items of a sweep whose work runs in a transaction of its own."""

    async def claim_due_defaults(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[tuple[int, str]]:
        """Pending evaluations past their default time that no live lease holds, leased now.

        Returns (evaluation id, case number) pairs. The index (status, default_due_at) makes
        the cost follow the due rows, not the table (bench/sweep_bench.py).
        """
        rows = (await self.session.execute(due_defaults_query(now, limit))).all()
        case_of = {int(row[0]): str(row[1]) for row in rows}
        won = await self.lease(DEFAULT_SWEEP, list(case_of), now, owner, lease_until)
        return [(i, case_of[i]) for i in won]

    async def lease(
        self, sweep: str, ids: list[int], now: datetime, owner: str, until: datetime
    ) -> list[int]:
        """Insert or take over expired leases; the primary key settles any race: one wins."""
        if not ids:
            return []
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        rows = [
            {"sweep": sweep, "item_id": i, "claimed_by": owner, "claimed_until": until} for i in ids
        ]
        upsert = insert(SweepClaim).values(rows)
        statement = upsert.on_conflict_do_update(
            index_elements=[SweepClaim.sweep, SweepClaim.item_id],
            set_={"claimed_by": owner, "claimed_until": until},
            where=SweepClaim.claimed_until <= now,
        ).returning(SweepClaim.item_id)
        won = (await self.session.execute(statement)).scalars().all()
        return sorted(won)

    async def release(self, sweep: str, ids: Sequence[int]) -> None:
        if ids:
            await self.session.execute(
                delete(SweepClaim).where(SweepClaim.sweep == sweep, SweepClaim.item_id.in_(ids))
            )


class DefaultRatingRepository(SessionRepository):
    """Queries of the batched default rating (rating/ratings/defaults.py)."""

    async def pending(self, ids: Sequence[int]) -> Sequence[Evaluation]:
        """Those of `ids` still pending, with their cases, in id order."""
        result = await self.session.execute(
            select(Evaluation)
            .join(Evaluation.case)
            .options(contains_eager(Evaluation.case))
            .where(Evaluation.id.in_(ids), unindexed(Evaluation.status) == "pending")
            .order_by(Evaluation.id)
        )
        return result.scalars().all()


def leased(sweep: str, now: datetime) -> Any:
    """Whether another process holds a live lease of `sweep` on the evaluation (a correlated
    EXISTS for the due-cases queries)."""
    return exists().where(
        SweepClaim.sweep == sweep,
        SweepClaim.item_id == Evaluation.id,
        SweepClaim.claimed_until > now,
    )
