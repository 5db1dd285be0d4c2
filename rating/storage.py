"""Repositories: the only place that writes queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager, joinedload, selectinload
from sqlalchemy.orm.instrumentation import manager_of_class

from rating.models import ApiToken, AuditEntry, Case, Evaluation, Rating, Ticket

T = TypeVar("T")


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

    async def adopt_many(self, rating_ids: Sequence[int], status: str) -> set[int]:
        """Compare-and-set for each evaluation in one statement: an evaluation still pending
        takes its rating (at most one of `rating_ids` per evaluation); the ids of the
        evaluations that did. The ratings' own `adopted` is the caller's (rating/batch_rating.py
        writes it with the rating)."""
        if not rating_ids:
            return set()
        # Core (the ORM's bulk-update path costs CPU), the rating found by a join rather than
        # a CASE over every pair, whose bound literals were most of this statement's CPU.
        table = cast(Table, Evaluation.__table__)
        ratings = cast(Table, Rating.__table__)
        result = await self.session.execute(
            update(table)
            .where(
                table.c.id == ratings.c.evaluation_id,
                ratings.c.id.in_(list(rating_ids)),
                table.c.status == "pending",
            )
            .values(status=status, adopted_rating_id=ratings.c.id)
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
            table, columns = _insert_plan(type(obj))
            given = obj.__dict__
            values: dict[str, Any] = {}
            for attr, column, default in columns:
                if attr in given:
                    values[column] = given[attr]
                elif default is not None:
                    # The column's Python default, set on the object too, as a flush would.
                    value = default.arg if default.is_scalar else default.arg(None)
                    setattr(obj, attr, value)
                    values[column] = value
            groups.setdefault((table, tuple(values)), []).append((obj, values))
        sqlite = self.session.get_bind().dialect.name == "sqlite"
        for (table, _), rows in groups.items():
            params = [values for _, values in rows]
            if sqlite:
                ids = await self._sqlite_ids(table, params)
            else:
                statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
                ids = list((await self.session.execute(statement, params)).scalars().all())
            for (obj, _), new_id in zip(rows, ids, strict=True):
                obj.id = new_id

    async def _sqlite_ids(self, table: Table, params: list[dict[str, Any]]) -> list[int]:
        """Insert on SQLite, the ids in `params` order.

        SQLAlchemy cannot promise RETURNING's row order on SQLite, so with
        `sort_by_parameter_order` it sent one INSERT per row (bench/ivr_bench.py: 2 of the 2.7
        CPU ms of a call). SQLite numbers rows without an id one above the table's largest id,
        in VALUES order, and a transaction's first INSERT takes the database's write lock, so
        the ids of one batch are consecutive in `params` order: sorted, they are that order.
        Should they not be consecutive (an id at SQLite's maximum makes it pick at random),
        the batch fails rather than guess.
        """
        result = await self.session.execute(insert(table).returning(table.c.id), params)
        ids = sorted(result.scalars().all())
        if len(ids) != len(params) or (ids and ids[-1] - ids[0] != len(ids) - 1):
            raise RuntimeError(f"SQLite gave {table.name} ids that are not consecutive: {ids}")
        return ids


_Plan = tuple[Table, list[tuple[str, str, Any]]]
_plans: dict[type[Any], _Plan] = {}
_attribute_keys: dict[type[Any], frozenset[str]] = {}


def _insert_plan(model: type[Any]) -> _Plan:
    """A mapped class's table and its columns as insert_all reads them: (attribute, column,
    Python default or None), primary key left to the database; worked out once per class."""
    plan = _plans.get(model)
    if plan is None:
        mapper = sa_inspect(model)
        columns = []
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            default = None if column.primary_key else column.default
            columns.append((prop.key, column.key, default))
        plan = _plans[model] = (cast(Table, mapper.local_table), columns)
    return plan


def new_record(model: type[T], values: dict[str, Any]) -> T:
    """A transient `model` holding `values`, as `model(**values)` would, without the
    constructor's event per attribute (most of the CPU of a batch's ratings and tickets):
    for objects insert_all writes and callers only read."""
    keys = _attribute_keys.get(model)
    if keys is None:
        keys = _attribute_keys[model] = frozenset(sa_inspect(model).attrs.keys())
    if not keys.issuperset(values):
        unknown = ", ".join(sorted(set(values) - keys))
        raise TypeError(f"{model.__name__} has no attribute {unknown}")
    obj: T = manager_of_class(model).new_instance()
    obj.__dict__.update(values)
    return obj


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
