"""Batch statements whose SQL text is the same for any batch size, values converted once.

The batched writes (rating/ratings/writer.py) send a few statements for up to 200 ratings. Built
as SQLAlchemy Core statements, their cost grew with the rows, not the statements: an `IN` list
renders one placeholder per value and an executemany INSERT one VALUES row per item, so every
batch size was a new SQL text for the driver to prepare, and each value went through the
compiler's parameter machinery (bench/ivr_bench.py: that and the ORM's row loading were half
of a burst's write).

Here:
- `matching(column, values)` is a criterion with ONE parameter for the whole list: an array
  with `= ANY($1)` on PostgreSQL, a JSON array through `json_each` on SQLite.
- `insert_values` inserts rows at the driver (`exec_driver_sql`), each value converted by its
  column's own SQLAlchemy type for the dialect (the UTC timestamps, JSON), in one statement:
  on PostgreSQL `INSERT ... SELECT FROM unnest(one array per column)`, on SQLite a VALUES
  list. It still runs on the session's connection and transaction, and a driver error still
  comes back as SQLAlchemy's (IntegrityError for a unique key).

New ids come back in row order. PostgreSQL: the rows are inserted `ORDER BY` their position
and the serial ids, taken in that order, are sorted, as SQLAlchemy's own insertmanyvalues does
for `sort_by_parameter_order`. SQLite numbers rows one above the table's largest id in VALUES
order while the transaction holds the write lock, so the ids are consecutive; should they not
be (an id at SQLite's maximum makes it pick at random), the insert fails rather than guess.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ColumnElement, Table, Text, any_, bindparam, func, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.schema import Column

SQLITE_MAX_VARIABLES = 32_766  # SQLite 3.32+; one statement's placeholders at most


def matching(
    column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any], dialect: Dialect
) -> Any:
    """`column IN values` with one bound parameter for the whole list (ints or strings: on
    SQLite the list travels as JSON); `column` a table's column or a mapped attribute."""
    if dialect.name == "postgresql":
        element = Text() if column.type.python_type is str else column.type
        return column == any_(bindparam(None, list(values), type_=ARRAY(element)))
    listed: Any = sa_select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(list(values))))
    )
    return column.in_(listed.scalar_subquery())


def unindexed(column: Any) -> Any:
    """`column` as an expression no index serves (`column || ''`), for a statement that finds
    its rows by their keys (an id list) and also checks their status: SQLite, without
    statistics, otherwise starts from the status index and reads every row in that status
    (134 ms a batch with 8,000 pending evaluations), so the cost grows with the backlog
    instead of with the batch. Only for text columns."""
    return column + ""


Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str  # PostgreSQL: the whole statement; SQLite: up to the VALUES list
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, its conversion)
    width: int  # placeholders per row (SQLite)


_plans: dict[tuple[str, Table, tuple[str, ...], bool], _Plan] = {}


async def insert_values(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning_ids: bool,
) -> list[int]:
    """Insert `rows` (one value per name in `columns`, Python values as the ORM takes them)
    into `table`; the new ids in row order when `returning_ids`, else []."""
    if not rows:
        return []
    connection = await session.connection()
    dialect = connection.dialect
    plan = _plan(dialect, table, tuple(columns), returning_ids)
    if dialect.name == "postgresql":
        # Column by column: each array converted by one list comprehension, and only the
        # columns whose type converts anything (timestamps to UTC, JSON to text).
        arrays = [list(column) for column in zip(*rows, strict=True)]
        if len(arrays) != plan.width:
            raise ValueError(f"{table.name}: {len(arrays)} values a row for {plan.width} columns")
        for i, process in plan.processors:
            arrays[i] = [process(value) for value in arrays[i]]
        result = await connection.exec_driver_sql(plan.sql, tuple(arrays))
        return sorted(result.scalars().all()) if returning_ids else []
    converted = [_convert(plan.processors, row) for row in rows]
    if not returning_ids:
        await connection.exec_driver_sql(plan.sql + _placeholders(plan.width, 1), converted)
        return []
    ids: list[int] = []
    step = max(1, SQLITE_MAX_VARIABLES // plan.width)
    for first in range(0, len(converted), step):
        chunk = converted[first : first + step]
        sql = plan.sql + _placeholders(plan.width, len(chunk)) + " RETURNING id"
        result = await connection.exec_driver_sql(sql, tuple(v for row in chunk for v in row))
        got = sorted(result.scalars().all())
        if len(got) != len(chunk) or (got and got[-1] - got[0] != len(got) - 1):
            raise RuntimeError(f"SQLite gave {table.name} ids that are not consecutive: {got}")
        ids.extend(got)
    return ids


def _convert(
    processors: tuple[tuple[int, Callable[[Any], Any]], ...], row: Sequence[Any]
) -> tuple[Any, ...]:
    # Every value, None too: a JSON column's None is JSON null, as SQLAlchemy writes it.
    values = list(row)
    for i, process in processors:
        values[i] = process(values[i])
    return tuple(values)


def _placeholders(width: int, rows: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return ", ".join([one] * rows)


def _plan(dialect: Dialect, table: Table, columns: tuple[str, ...], returning: bool) -> _Plan:
    key = (dialect.name, table, columns, returning)
    plan = _plans.get(key)
    if plan is None:
        cols = [table.c[name] for name in columns]
        processors = tuple(
            (i, process)
            for i, column in enumerate(cols)
            if (process := _bind_processor(column, dialect)) is not None
        )
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c.name) for c in cols)
        target = dialect.identifier_preparer.format_table(table)
        if dialect.name == "postgresql":
            sql = _postgres_insert(dialect, target, cols, names, returning)
        else:
            sql = f"INSERT INTO {target} ({names}) VALUES "
        plan = _plans[key] = _Plan(sql, processors, len(cols))
    return plan


def _postgres_insert(
    dialect: Dialect, target: str, cols: list[Column[Any]], names: str, returning: bool
) -> str:
    """INSERT ... SELECT FROM unnest($1::type[], ...): strings as text[] (the assignment to a
    varchar(n) column still refuses an over-long value; a cast to varchar(n)[] would cut it),
    JSON as text[] cast back to json per row."""
    quote = dialect.identifier_preparer.quote
    arrays, picks = [], []
    for i, column in enumerate(cols, start=1):
        is_json = isinstance(column.type, JSON)
        if is_json or column.type.python_type is str:
            element = "text"
        else:
            element = column.type.compile(dialect=dialect)
        arrays.append(f"${i}::{element}[]")
        picks.append(f"u.{quote(column.name)}" + ("::json" if is_json else ""))
    sql = (
        f"INSERT INTO {target} ({names}) SELECT {', '.join(picks)} "
        f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS u({names}, pj_ord)"
    )
    if returning:
        sql += " ORDER BY u.pj_ord RETURNING id"
    return sql


def _bind_processor(column: Column[Any], dialect: Dialect) -> Processor:
    """What SQLAlchemy does to a value of this column before the driver sees it."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)
