"""Repositories: the only place that writes queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from rating.models import ApiToken, AuditEntry, Case, Evaluation, Rating, Ticket


class SessionRepository:
    """Named queries over one session; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, *objects: Any) -> None:
        self.session.add_all(objects)

    async def flush(self) -> None:
        await self.session.flush()


class Repository(SessionRepository):
    """The rating domain's queries: cases, evaluations, ratings, tickets, tokens, audit."""

    async def case_by_no(self, case_no: str) -> Case | None:
        result = await self.session.execute(
            select(Case)
            .where(Case.case_no == case_no)
            .options(selectinload(Case.evaluation).selectinload(Evaluation.ratings))
        )
        return result.scalar_one_or_none()

    async def evaluation_by_case_no(self, case_no: str) -> Evaluation | None:
        return (await self.evaluations_by_case_nos([case_no])).get(case_no)

    async def evaluations_by_case_nos(self, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        """The evaluations of these cases, with their cases and ratings, by case number."""
        # One statement: the ratings joined in (most evaluations have none or one), not a
        # second SELECT as selectinload would send.
        result = await self.session.execute(
            select(Evaluation)
            .join(Evaluation.case)
            .where(Case.case_no.in_(list(case_nos)))
            .options(contains_eager(Evaluation.case), joinedload(Evaluation.ratings))
        )
        return {e.case.case_no: e for e in result.unique().scalars()}

    async def evaluations(self, case_no: str | None, limit: int) -> Sequence[Evaluation]:
        query = (
            select(Evaluation)
            .join(Case)
            .options(selectinload(Evaluation.case), selectinload(Evaluation.ratings))
            .order_by(Evaluation.id.desc())
            .limit(limit)
        )
        if case_no is not None:
            query = query.where(Case.case_no == case_no)
        return (await self.session.execute(query)).scalars().all()

    async def rating_by_source(self, evaluation_id: int, source_ref: str) -> Rating | None:
        result = await self.session.execute(
            select(Rating).where(
                Rating.evaluation_id == evaluation_id, Rating.source_ref == source_ref
            )
        )
        return result.scalar_one_or_none()

    async def adopt_many(self, rating_of: dict[int, int], status: str) -> set[int]:
        """Compare-and-set for each evaluation in one statement: an evaluation still pending
        takes its rating (evaluation id -> rating id); the ids of those that did. The ratings'
        own `adopted` is the caller's (rating/batch_rating.py writes it with the rating)."""
        if not rating_of:
            return set()
        table = cast(Table, Evaluation.__table__)  # Core: the ORM's bulk-update path costs CPU
        result = await self.session.execute(
            update(table)
            .where(table.c.id.in_(list(rating_of)), table.c.status == "pending")
            .values(status=status, adopted_rating_id=case(rating_of, value=table.c.id))
            .returning(table.c.id)
        )
        return set(result.scalars().all())

    async def unadopt(self, rating_ids: Sequence[int]) -> None:
        """Ratings written as adopted whose evaluation took another one meanwhile."""
        await self.session.execute(
            update(Rating)
            .where(Rating.id.in_(list(rating_ids)))
            .values(adopted=False)
            .execution_options(synchronize_session=False)
        )

    async def tickets_for_ratings(self, rating_ids: Sequence[int]) -> dict[int, Ticket]:
        """The tickets born of these ratings, by rating id (one ticket per rating at most)."""
        if not rating_ids:
            return {}
        result = await self.session.execute(
            select(Ticket).where(Ticket.rating_id.in_(list(rating_ids)))
        )
        return {ticket.rating_id: ticket for ticket in result.scalars()}

    async def tickets_for_case(self, case_id: int) -> Sequence[Ticket]:
        result = await self.session.execute(
            select(Ticket).where(Ticket.case_id == case_id).order_by(Ticket.id)
        )
        return result.scalars().all()

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        result = await self.session.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )
        return result.scalar_one_or_none()

    def audit(
        self, at: datetime, actor: str, action: str, entity: str, entity_id: str, **data: Any
    ) -> None:
        self.session.add(audit_entry(at, actor, action, entity, entity_id, **data))

    async def insert_rows(self, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
        """Insert plain rows (the same keys in each) into `model`'s table: one executemany.
        Cheaper than objects where nothing reads the rows back (outbox rows, audit lines)."""
        if rows:
            await self.session.execute(insert(cast(Table, model.__table__)), list(rows))

    async def insert_all(self, objects: Sequence[Any]) -> None:
        """Insert new mapped objects with Core executemany, bypassing the unit of work: one
        cached statement per table (and set of given attributes) instead of the ORM's
        cascades and per-object bookkeeping. Each object gets its primary key; the objects
        stay transient: plain records of what was written."""
        groups: dict[tuple[Any, tuple[str, ...]], list[tuple[Any, dict[str, Any]]]] = {}
        for obj in objects:
            mapper = sa_inspect(obj).mapper
            values: dict[str, Any] = {}
            for prop in mapper.column_attrs:
                column = prop.columns[0]
                if prop.key not in obj.__dict__:
                    default = column.default
                    if default is None or column.primary_key:
                        continue
                    # The column's Python default, set on the object too, as a flush would.
                    value = default.arg if default.is_scalar else default.arg(None)
                    setattr(obj, prop.key, value)
                values[column.key] = obj.__dict__[prop.key]
            key = (mapper.local_table, tuple(values))
            groups.setdefault(key, []).append((obj, values))
        for (table, _), rows in groups.items():
            statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            result = await self.session.execute(statement, [values for _, values in rows])
            for (obj, _), new_id in zip(rows, result.scalars().all(), strict=True):
                obj.id = new_id


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
