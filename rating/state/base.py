"""The shared-state interface every part coordinates through, and its errors.

Shared state is for coordination only (dedupe, rate limits, locks, notifications), never
for truth: the database holds the truth, and Redis may be lost without losing a rating.

Every key and channel is prefixed by the namespace given at construction, then by the
kind of operation (`claim:`, `rate:`, `lock:`), so a claim and a lock with the same name
never collide. Keys and channels show up in Redis and in error messages: never put a
phone number in one, use its keyed hash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

DEFAULT_NAMESPACE = "pingjia:"

# Lock polling starts fast (an uncontended hand-over is quick) and backs off to this.
_LOCK_POLL_MAX = 0.1


class StateError(Exception):
    """Shared state could not do what was asked; the message says what and why."""


class StateUnavailable(StateError):
    """The backend (Redis) did not answer after brief retries; the caller may fall back."""

    def __init__(self, message: str, *, operation: str, url: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url


class LockTimeout(StateError):
    """Another holder kept the lock for longer than the caller was willing to wait."""

    def __init__(self, message: str, *, key: str, wait: float) -> None:
        super().__init__(message)
        self.key = key
        self.wait = wait


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The outcome of one `hit`: allowed or not, hits so far in the window, when to retry."""

    allowed: bool
    count: int
    retry_after: float


class SharedState(Protocol):
    """Coordination across the processes of one deployment (or within one, in memory)."""

    @property
    def namespace(self) -> str:
        """The prefix of every key and channel this state touches."""
        ...

    async def claim(self, key: str, ttl: float) -> bool:
        """Return True the first time `key` is claimed within `ttl` seconds, else False."""
        ...

    async def release(self, key: str) -> None:
        """Drop a claim before its ttl runs out, so the key can be claimed again."""
        ...

    async def hit(self, key: str, limit: int, window: float) -> RateLimit:
        """Count one hit against a fixed window of `window` seconds allowing `limit` hits."""
        ...

    def lock(self, key: str, ttl: float, wait: float = 5.0) -> AbstractAsyncContextManager[None]:
        """Hold a cross-process lock for at most `ttl` s; raise LockTimeout after `wait` s."""
        ...

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every current subscriber of `channel`."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Receive, in order, the messages published to `channel` after entering."""
        ...

    async def ping(self) -> bool:
        """Return True when the backend answers, False otherwise (never raises)."""
        ...

    async def close(self) -> None:
        """Release connections and end open subscriptions; safe to call twice."""
        ...


def scoped(namespace: str, kind: str, key: str) -> str:
    """Return the full backend key for `key` of the given kind under `namespace`."""
    return f"{namespace}{kind}:{key}"


def check_positive(name: str, value: float) -> None:
    """Raise ValueError unless `value` is a positive number of seconds (or hits)."""
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


async def acquire_within(try_acquire: Callable[[], Awaitable[bool]], key: str, wait: float) -> None:
    """Call `try_acquire` until it returns True; raise LockTimeout after `wait` seconds."""
    if wait < 0:
        raise ValueError(f"wait must not be negative, got {wait!r}")
    deadline = time.monotonic() + wait
    delay = 0.005
    while not await try_acquire():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeout(
                f"lock {key!r} is still held by another holder after waiting {wait:g} s",
                key=key,
                wait=wait,
            )
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, _LOCK_POLL_MAX)
