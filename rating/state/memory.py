"""Shared state inside one process: for a county on SQLite, laptops and tests.

Nothing here is shared with another process; run several `pingjia serve` processes only
with Redis. Times come from a monotonic clock, so wall-clock jumps do not move TTLs.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rating.state.base import (
    DEFAULT_NAMESPACE,
    RateLimit,
    StateError,
    acquire_within,
    check_positive,
    scoped,
)

# Expired entries are dropped lazily on access; a full sweep every so many writes keeps
# keys that are never read again (one-off claims) from piling up.
_SWEEP_EVERY = 1024


@dataclass(slots=True)
class _Window:
    count: int
    ends_at: float


class _End:
    """Put in a subscriber's queue to end its iteration."""


_END = _End()


class _Subscription:
    """Messages of one subscriber, in publish order, until the state closes."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | _End] = asyncio.Queue()
        self._ended = False

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> str:
        if self._ended:
            raise StopAsyncIteration
        item = await self.queue.get()
        if isinstance(item, _End):
            self._ended = True
            raise StopAsyncIteration
        return item


class MemoryState:
    """SharedState for one process, on dictionaries and asyncio queues."""

    def __init__(
        self, namespace: str = DEFAULT_NAMESPACE, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._namespace = namespace
        self._clock = clock
        # key -> expiry time, for claims; key -> (token, expiry) for locks.
        self._claims: dict[str, float] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._windows: dict[str, _Window] = {}
        self._channels: dict[str, set[_Subscription]] = {}
        self._writes = 0
        self._closed = False

    @property
    def namespace(self) -> str:
        """The prefix of every key and channel this state touches."""
        return self._namespace

    async def claim(self, key: str, ttl: float) -> bool:
        """Return True the first time `key` is claimed within `ttl` seconds, else False."""
        check_positive("ttl", ttl)
        self._check_open()
        full, now = scoped(self._namespace, "claim", key), self._clock()
        expires = self._claims.get(full)
        if expires is not None and expires > now:
            return False
        self._claims[full] = now + ttl
        self._wrote()
        return True

    async def release(self, key: str) -> None:
        """Drop a claim before its ttl runs out, so the key can be claimed again."""
        self._check_open()
        self._claims.pop(scoped(self._namespace, "claim", key), None)

    async def hit(self, key: str, limit: int, window: float) -> RateLimit:
        """Count one hit against a fixed window of `window` seconds allowing `limit` hits."""
        check_positive("limit", limit)
        check_positive("window", window)
        self._check_open()
        full, now = scoped(self._namespace, "rate", key), self._clock()
        current = self._windows.get(full)
        if current is None or current.ends_at <= now:
            current = self._windows[full] = _Window(count=0, ends_at=now + window)
            self._wrote()
        current.count += 1
        if current.count <= limit:
            return RateLimit(allowed=True, count=current.count, retry_after=0.0)
        return RateLimit(allowed=False, count=current.count, retry_after=current.ends_at - now)

    @asynccontextmanager
    async def lock(self, key: str, ttl: float, wait: float = 5.0) -> AsyncIterator[None]:
        """Hold the lock on `key` for at most `ttl` s; raise LockTimeout after `wait` s."""
        check_positive("ttl", ttl)
        self._check_open()
        full, token = scoped(self._namespace, "lock", key), secrets.token_hex(8)

        async def try_acquire() -> bool:
            now = self._clock()
            held = self._locks.get(full)
            if held is not None and held[1] > now:
                return False
            self._locks[full] = (token, now + ttl)
            self._wrote()
            return True

        await acquire_within(try_acquire, key, wait)
        try:
            yield
        finally:
            # Only the owner releases: after our ttl ran out someone else may hold it.
            held = self._locks.get(full)
            if held is not None and held[0] == token:
                del self._locks[full]

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every current subscriber of `channel`."""
        self._check_open()
        for subscription in self._channels.get(self._channel(channel), ()):
            subscription.queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        """Receive, in order, the messages published to `channel` after entering."""
        self._check_open()
        full = self._channel(channel)
        subscription = _Subscription()
        self._channels.setdefault(full, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._channels.get(full)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._channels[full]

    async def ping(self) -> bool:
        """Return True until the state is closed."""
        return not self._closed

    async def close(self) -> None:
        """Forget everything and end open subscriptions; safe to call twice."""
        self._closed = True
        for subscribers in self._channels.values():
            for subscription in subscribers:
                subscription.queue.put_nowait(_END)
        self._channels.clear()
        self._claims.clear()
        self._locks.clear()
        self._windows.clear()

    def _channel(self, channel: str) -> str:
        return f"{self._namespace}{channel}"

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("shared state (memory) is closed")

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        self._claims = {k: exp for k, exp in self._claims.items() if exp > now}
        self._locks = {k: held for k, held in self._locks.items() if held[1] > now}
        self._windows = {k: w for k, w in self._windows.items() if w.ends_at > now}
