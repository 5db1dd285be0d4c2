"""Counting what reaches the database, through SQLAlchemy's engine events: tests assert the
number of transactions and statements (behaviour) instead of the batchers' own counters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class SqlCount:
    transactions: int = 0
    statements: int = 0


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[SqlCount]:
    """Count the transactions begun and the statements executed on `engine` meanwhile."""
    seen = SqlCount()
    sync = engine.sync_engine

    def on_begin(_conn: Any) -> None:
        seen.transactions += 1

    def on_execute(*_args: Any) -> None:
        seen.statements += 1

    event.listen(sync, "begin", on_begin)
    event.listen(sync, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(sync, "begin", on_begin)
        event.remove(sync, "before_cursor_execute", on_execute)
