"""Claim the next batch while the current one is sent: the sweeps' pipeline.

In lockstep (claim → send → store, then the next claim) every batch paid for its claim and its
store with the sending stopped, and the last wave of each batch ran with most send slots
empty. Here batch n+1 is claimed, and its sends queued behind batch n's on the same bounded
slots, while batch n is still sending and storing. At most one batch is claimed ahead: rows
claimed are committed `sending`, and a crash leaves such rows unsent (never twice beats once
more), so the window stays at two batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


async def drain(
    claim: Callable[[], Awaitable[Sequence[T]]],
    deliver: Callable[[Sequence[T]], Coroutine[Any, Any, int]],
    *,
    max_batches: int,
) -> int:
    """Claim and deliver batches until a claim comes back empty or `max_batches` were
    claimed; the sum of what `deliver` returned. A claimed batch is always delivered, even
    when a later claim fails."""
    delivered = 0
    running: list[asyncio.Task[int]] = []
    try:
        for _ in range(max_batches):
            batch = await claim()
            if not batch:
                break
            running.append(asyncio.create_task(deliver(batch)))
            if len(running) > 1:
                delivered += await running.pop(0)
    finally:
        outcomes = await asyncio.gather(*running, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        delivered += outcome
    return delivered
