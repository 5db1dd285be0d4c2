"""Shared state: dedupe, rate limits, locks and pub/sub for coordination, never for truth."""

from __future__ import annotations

from rating.state.base import (
    DEFAULT_NAMESPACE,
    LockTimeout,
    RateLimit,
    SharedState,
    StateError,
    StateUnavailable,
)
from rating.state.memory import MemoryState
from rating.state.redis import RedisState

__all__ = [
    "DEFAULT_NAMESPACE",
    "LockTimeout",
    "MemoryState",
    "RateLimit",
    "RedisState",
    "SharedState",
    "StateError",
    "StateUnavailable",
    "make_state",
]


def make_state(redis_url: str | None, namespace: str = DEFAULT_NAMESPACE) -> SharedState:
    """Build the shared state: Redis when a URL is given, else in-process memory."""
    if redis_url is None:
        return MemoryState(namespace)
    return RedisState(redis_url, namespace)
