"""Repositories: the only place that writes queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Integer, Table, bindparam, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager, joinedload, selectinload
from sqlalchemy.orm.instrumentation import manager_of_class

from rating.bulk_sql import insert_values, matching, unindexed
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

    async def evaluation_records(self, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        """The evaluations of these cases with their cases and ratings, by case number, as
        plain records (rating.storage.new_record) outside the session: for a batch's write,
        which reads them and sets what it wrote (rating/batch_rating.py).

        One Core statement with one parameter for the list (rating/bulk_sql.py): the ORM's
        loading of three objects per row was a fifth of a burst's write."""
        evaluations, cases, ratings = (_table(m) for m in (Evaluation, Case, Rating))
        plans = [_read_plan(Case), _read_plan(Evaluation), _read_plan(Rating)]
        dialect = self.session.get_bind().dialect
        query = (
            select(*(column for plan in plans for column in plan[1]))
            .select_from(
                evaluations.join(cases, cases.c.id == evaluations.c.case_id).outerjoin(
                    ratings, ratings.c.evaluation_id == evaluations.c.id
                )
            )
            .where(matching(cases.c.case_no, list(case_nos), dialect))
            .order_by(evaluations.c.id, ratings.c.id)
        )
        found: dict[str, Evaluation] = {}
        by_id: dict[int, Evaluation] = {}
        n_case, n_eval = len(plans[0][1]), len(plans[1][1])
        for row in await self.session.execute(query):
            evaluation = by_id.get(row[n_case])
            if evaluation is None:
                case = _record(Case, plans[0], row[:n_case])
                evaluation = _record(Evaluation, plans[1], row[n_case : n_case + n_eval])
                evaluation.__dict__.update(case=case, ratings=[])
                case.__dict__["evaluation"] = evaluation
                by_id[evaluation.id] = found[case.case_no] = evaluation
            if row[n_case + n_eval] is not None:  # a rating (outer join)
                rating = _record(Rating, plans[2], row[n_case + n_eval :])
                evaluation.ratings.append(rating)
        return found

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

    async def adopt_many(self, pairs: Sequence[tuple[int, int]], status: str) -> set[int]:
        """Compare-and-set for each evaluation in one statement: an evaluation still pending
        takes its rating; `pairs` are (evaluation id, rating id), one per evaluation at most.
        The ids of the evaluations that did. The ratings' own `adopted` is the caller's
        (rating/batch_rating.py writes it with the rating).

        The statement starts from the pairs and finds each evaluation by primary key. Found
        through the rating's row instead, SQLite's planner started from the status index and
        read every pending evaluation for each batch (134 ms a batch with 8,000 pending: the
        costs grew with the backlog, not with the batch)."""
        if not pairs:
            return set()
        table = _table(Evaluation)
        dialect = self.session.get_bind().dialect
        given: Any
        if dialect.name == "postgresql":
            given = (
                func.unnest(
                    bindparam(None, [e for e, _ in pairs], type_=ARRAY(Integer)),
                    bindparam(None, [r for _, r in pairs], type_=ARRAY(Integer)),
                )
                .table_valued("evaluation_id", "rating_id")
                .render_derived(name="given")
            )
            evaluation_id, rating_id = given.c.evaluation_id, given.c.rating_id
            pending = table.c.status == "pending"
        else:
            given = func.json_each(bindparam(None, json.dumps(pairs))).table_valued(
                "value", name="given"
            )
            evaluation_id = func.json_extract(given.c.value, "$[0]")
            rating_id = func.json_extract(given.c.value, "$[1]")
            pending = unindexed(table.c.status) == "pending"  # found by id, not by status
        result = await self.session.execute(
            update(table)
            .where(table.c.id == evaluation_id, pending)
            .values(status=status, adopted_rating_id=rating_id)
            .returning(table.c.id)
        )
        return set(result.scalars().all())

    async def unadopt(self, rating_ids: Sequence[int]) -> None:
        """Ratings written as adopted whose evaluation took another one meanwhile."""
        dialect = self.session.get_bind().dialect
        await self.session.execute(
            update(Rating)
            .where(matching(Rating.id, list(rating_ids), dialect))
            .values(adopted=False)
            .execution_options(synchronize_session=False)
        )

    async def tickets_for_ratings(self, rating_ids: Sequence[int]) -> dict[int, Ticket]:
        """The tickets born of these ratings, by rating id (one ticket per rating at most)."""
        if not rating_ids:
            return {}
        dialect = self.session.get_bind().dialect
        result = await self.session.execute(
            select(Ticket).where(matching(Ticket.rating_id, list(rating_ids), dialect))
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
        """Insert plain rows (the same keys in each) into `model`'s table in one statement
        (rating/bulk_sql.py), the columns' Python defaults filled in. Cheaper than objects
        where nothing reads the rows back (outbox rows, audit lines)."""
        await self._insert(model, [(row, None) for row in rows], returning_ids=False)

    async def insert_all(self, objects: Sequence[Any]) -> None:
        """Insert new mapped objects in one statement per table (and set of given attributes),
        bypassing the unit of work's cascades and per-object bookkeeping (rating/bulk_sql.py).
        Each object gets its primary key and its columns' Python defaults, as a flush would
        give them; the objects stay transient: plain records of what was written."""
        by_model: dict[type[Any], list[tuple[dict[str, Any], Any]]] = {}
        for obj in objects:
            by_model.setdefault(type(obj), []).append((obj.__dict__, obj))
        for model, items in by_model.items():
            await self._insert(model, items, returning_ids=True)

    async def _insert(
        self, model: type[Any], items: Sequence[tuple[dict[str, Any], Any]], *, returning_ids: bool
    ) -> None:
        """Rows of `model` given as (attribute values, object to complete or None), grouped by
        the columns they set; an object gets its defaults and its new id."""
        table, columns = _insert_plan(model)
        groups: dict[tuple[str, ...], list[tuple[Any, list[Any]]]] = {}
        shapes: dict[tuple[str, ...], _Shape] = {}  # the work out of a set of given keys
        for given, obj in items:
            keys = tuple(given)
            shape = shapes.get(keys)
            if shape is None:
                shape = shapes[keys] = _shape(columns, given)
            names, taken, defaults = shape
            values = [given[attr] for attr in taken]
            for attr, default in defaults:
                # The column's Python default, set on the object too, as a flush would.
                value = default.arg if default.is_scalar else default.arg(None)
                values.append(value)
                if obj is not None:
                    setattr(obj, attr, value)
            groups.setdefault(names, []).append((obj, values))
        for group, rows in groups.items():
            ids = await insert_values(
                self.session,
                table,
                group,
                [values for _, values in rows],
                returning_ids=returning_ids,
            )
            for (obj, _), new_id in zip(rows, ids, strict=returning_ids):
                obj.id = new_id


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


_Shape = tuple[tuple[str, ...], list[str], list[tuple[str, Any]]]


def _shape(columns: list[tuple[str, str, Any]], given: dict[str, Any]) -> _Shape:
    """For rows that set these attributes: the columns written (given ones first, then those
    filled by their Python default), the attributes taken as given, the defaults to fill."""
    taken = [(attr, column) for attr, column, _ in columns if attr in given]
    defaults = [
        (attr, column, default)
        for attr, column, default in columns
        if attr not in given and default is not None
    ]
    names = tuple([c for _, c in taken] + [c for _, c, _ in defaults])
    return names, [a for a, _ in taken], [(a, d) for a, _, d in defaults]


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


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


_ReadPlan = tuple[tuple[str, ...], list[Any]]
_read_plans: dict[type[Any], _ReadPlan] = {}


def _read_plan(model: type[Any]) -> _ReadPlan:
    """The attribute names and the columns of `model`, in table order."""
    plan = _read_plans.get(model)
    if plan is None:
        props = sa_inspect(model).column_attrs
        plan = _read_plans[model] = (
            tuple(prop.key for prop in props),
            [prop.columns[0] for prop in props],
        )
    return plan


def _record(model: type[T], plan: _ReadPlan, values: Sequence[Any]) -> T:
    """A plain record of `model` from a row's values (as new_record, without its checks)."""
    obj: T = manager_of_class(model).new_instance()
    obj.__dict__.update(zip(plan[0], values, strict=True))
    return obj
