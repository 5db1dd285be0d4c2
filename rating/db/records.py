"""The repositories' common floor: a session, and rows written in one statement per table.

Each concept's repository (its named queries) builds on `SessionRepository`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.instrumentation import manager_of_class

from rating.db.bulk_sql import insert_values

T = TypeVar("T")


class SessionRepository:
    """Named queries over one session; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, *objects: Any) -> None:
        self.session.add_all(objects)

    async def flush(self) -> None:
        await self.session.flush()

    async def insert_rows(self, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
        """Insert plain rows (the same keys in each) into `model`'s table in one statement
        (rating/db/bulk_sql.py), the columns' Python defaults filled in. Cheaper than objects
        where nothing reads the rows back (outbox rows, audit lines)."""
        await self._insert(model, [(row, None) for row in rows], returning_ids=False)

    async def insert_all(self, objects: Sequence[Any]) -> None:
        """Insert new mapped objects in one statement per table (and set of given attributes),
        bypassing the unit of work's cascades and per-object bookkeeping (rating/db/bulk_sql.py).
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


def table_of(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


ReadPlan = tuple[tuple[str, ...], list[Any]]


_read_plans: dict[type[Any], ReadPlan] = {}


def read_plan(model: type[Any]) -> ReadPlan:
    """The attribute names and the columns of `model`, in table order."""
    plan = _read_plans.get(model)
    if plan is None:
        props = sa_inspect(model).column_attrs
        plan = _read_plans[model] = (
            tuple(prop.key for prop in props),
            [prop.columns[0] for prop in props],
        )
    return plan


def plain_record(model: type[T], plan: ReadPlan, values: Sequence[Any]) -> T:
    """A plain record of `model` from a row's values (as new_record, without its checks)."""
    obj: T = manager_of_class(model).new_instance()
    obj.__dict__.update(zip(plan[0], values, strict=True))
    return obj
