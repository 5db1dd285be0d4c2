"""Group commit: requests that arrive while one batch is being written go together in the next.

A channel under load (a burst of calls hanging up, a burst of SMS replies) asks for many small
writes at once; one transaction for each costs a round of statements and a commit each, and the
ORM's CPU per statement. A `Batcher` keeps at most `in_flight` batches in flight (one unless
told): the first request is written alone and at once (no added latency when idle), the ones
that arrive meanwhile wait for it and go together in one transaction. Each caller gets its own
result or its own exception.

Two in flight (PostgreSQL, `rating.db.batches_in_flight`): while one batch waits for the
database's answers the next one is built, so the statements' round trips overlap our CPU
(bench/ivr_bench.py: the writes left at the end of a burst took 12 % less time). SQLite keeps
one: it has one writer, and a second transaction would only wait for its lock.

The writer task runs only while there is work, so a batcher needs no start or stop; a request
whose caller is cancelled is still written (a caller that hangs up keeps its rating).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Sequence[T]], Awaitable[Sequence["R | Exception"]]]


class Batcher(Generic[T, R]):
    """Queue requests for `write`, which takes a batch and answers one result per request."""

    def __init__(
        self, write: Write[T, R], max_batch: int = 200, linger_s: float = 0.0, in_flight: int = 1
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self._write = write
        self.max_batch = max_batch
        # Wait this long for company before writing a batch that is not full: worth it where
        # a request's transaction costs far more than the wait (the SMS webhook's insert).
        self.linger_s = linger_s
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self.in_flight = in_flight
        self._writers: list[asyncio.Task[None]] = []
        self.batches = 0  # written so far, for the benchmarks and tests

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        # A writer that has finished but whose done-callbacks have not run yet takes nothing
        # more: count only the live ones, or this request could wait with no writer at all.
        self._writers = [w for w in self._writers if not w.done()]
        if len(self._writers) < self.in_flight:
            self._writers.append(asyncio.create_task(self._drain(), name="batcher"))
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            if self.linger_s and len(self._waiting) < self.max_batch:
                await asyncio.sleep(self.linger_s)
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                results: Sequence[R | Exception] = await self._write([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} answered {len(results)} results")
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                for _, future in self._waiting:
                    future.cancel()
                self._waiting.clear()
                raise
            except Exception as exc:  # the database failed: every request of the batch hears it
                results = [exc] * len(batch)
            self.batches += 1
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller was cancelled; the write stands
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


async def split_on_conflict(
    items: Sequence[T],
    write: Write[T, R],
    settle: Callable[[T], Awaitable[R | Exception]],
) -> list[R | Exception]:
    """Write a batch; should it hit a unique key that another process wrote meanwhile
    (IntegrityError: the transaction is rolled back), write its items one by one, and let
    `settle` answer the one that raced (it reads what the other process wrote).

    A batch the database rolled back as a deadlock (two transactions took the same rows in
    opposite orders: another process's, or this process's other batch in flight) is written
    one by one too: each then takes its own rows only. A lone item is tried once more."""
    try:
        return list(await write(items))
    except IntegrityError:
        if len(items) == 1:
            return [await settle(items[0])]
    except DBAPIError as exc:
        if not deadlocked(exc):
            raise
        if len(items) == 1:
            return list(await write(items))
    return [(await split_on_conflict([one], write, settle))[0] for one in items]


DEADLOCK_STATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def deadlocked(exc: DBAPIError) -> bool:
    """Whether the database rolled the transaction back to break a deadlock (PostgreSQL's
    SQLSTATE, as asyncpg reports it), so the same work may simply be written again."""
    return getattr(exc.orig, "sqlstate", None) in DEADLOCK_STATES
