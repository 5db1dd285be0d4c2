"""Shared state on Redis, for several `pingjia serve` processes against one Redis.

Redis only coordinates: when it is down, every operation retries briefly and then raises
StateUnavailable, so the caller can fall back (a dependency that is down slows the
service, never loses a rating). No operation waits longer than its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rating.state.base import (
    DEFAULT_NAMESPACE,
    RateLimit,
    StateError,
    StateUnavailable,
    acquire_within,
    check_positive,
    scoped,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "Redis is not there (or not writable) right now", not "we misused it".
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)

# A subscriber waits for messages in slices this long, so closing the state ends it soon.
_SUBSCRIBE_POLL = 0.25

# One fixed window per key: the first hit starts it, later hits only count.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

# Compare-and-delete: a holder whose ttl ran out must not free the next holder's lock.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def redact_url(url: str) -> str:
    """Return `url` with its password (in the userinfo or the query) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisState:
    """SharedState on Redis (redis.asyncio), with short timeouts and brief retries."""

    def __init__(
        self,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        attempts: int = 3,
        socket_timeout: float = 1.0,
        deadline: float = 5.0,
    ) -> None:
        check_positive("attempts", attempts)
        check_positive("socket_timeout", socket_timeout)
        check_positive("deadline", deadline)
        self._namespace = namespace
        self._url = redact_url(url)
        self._deadline = deadline
        self._client: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=attempts - 1),
        )
        self._hit = self._client.register_script(_HIT)
        self._unlock = self._client.register_script(_UNLOCK)
        self._subscriptions: set[_Subscription] = set()
        self._closed = False

    @property
    def namespace(self) -> str:
        """The prefix of every key and channel this state touches."""
        return self._namespace

    @property
    def url(self) -> str:
        """The Redis URL with its password hidden, fit for logs."""
        return self._url

    async def claim(self, key: str, ttl: float) -> bool:
        """Return True the first time `key` is claimed within `ttl` seconds, else False."""
        check_positive("ttl", ttl)
        full = scoped(self._namespace, "claim", key)
        done = await self._run(
            "claim", key, lambda: self._client.set(full, "1", nx=True, px=_millis(ttl))
        )
        return bool(done)

    async def release(self, key: str) -> None:
        """Drop a claim before its ttl runs out, so the key can be claimed again."""
        full = scoped(self._namespace, "claim", key)
        await self._run("release", key, lambda: self._client.delete(full))

    async def hit(self, key: str, limit: int, window: float) -> RateLimit:
        """Count one hit against a fixed window of `window` seconds allowing `limit` hits."""
        check_positive("limit", limit)
        check_positive("window", window)
        full = scoped(self._namespace, "rate", key)
        reply = await self._run("hit", key, lambda: self._hit(keys=[full], args=[_millis(window)]))
        count, ttl_ms = int(reply[0]), int(reply[1])
        if count <= limit:
            return RateLimit(allowed=True, count=count, retry_after=0.0)
        return RateLimit(allowed=False, count=count, retry_after=max(ttl_ms, 1) / 1000)

    @asynccontextmanager
    async def lock(self, key: str, ttl: float, wait: float = 5.0) -> AsyncIterator[None]:
        """Hold the lock on `key` for at most `ttl` s; raise LockTimeout after `wait` s."""
        check_positive("ttl", ttl)
        full, token = scoped(self._namespace, "lock", key), secrets.token_hex(16)

        async def try_acquire() -> bool:
            acquired = await self._run(
                "lock", key, lambda: self._client.set(full, token, nx=True, px=_millis(ttl))
            )
            return bool(acquired)

        await acquire_within(try_acquire, key, wait)
        try:
            yield
        finally:
            try:
                await self._run("unlock", key, lambda: self._unlock(keys=[full], args=[token]))
            except StateError as exc:
                # Not raised: it would hide the body's own outcome, and the ttl frees it.
                log.warning("lock %r not released, it expires within %g s: %s", key, ttl, exc)

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every current subscriber of `channel`."""
        full = self._channel(channel)
        await self._run("publish", channel, lambda: self._client.publish(full, message))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        """Receive, in order, the messages published to `channel` after entering."""
        full = self._channel(channel)
        pubsub = self._client.pubsub()
        try:
            await self._run("subscribe", channel, lambda: _confirmed(pubsub, full))
            subscription = _Subscription(self, pubsub, channel)
            self._subscriptions.add(subscription)
            try:
                yield subscription
            finally:
                self._subscriptions.discard(subscription)
        finally:
            # Closing only drops our connection; a dead one must not hide the body's error.
            with contextlib.suppress(RedisError, OSError):
                # redis-py annotates PubSub.aclose only from 8.2: through a typed name, the
                # call checks the same on every version the range allows.
                close: Callable[[], Awaitable[None]] = pubsub.aclose
                await close()

    async def ping(self) -> bool:
        """Return True when Redis answers, False otherwise (never raises)."""
        try:
            return bool(await self._run("ping", "", lambda: self._client.ping()))
        except StateError:
            return False

    async def close(self) -> None:
        """Close the connections and end open subscriptions; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for subscription in self._subscriptions:
            subscription.closed = True
        await self._client.aclose()

    def _channel(self, channel: str) -> str:
        return f"{self._namespace}{channel}"

    async def _run(self, operation: str, key: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call under the deadline, turning outages into StateUnavailable."""
        if self._closed:
            raise StateError(f"shared state (Redis at {self._url}) is closed: cannot {operation}")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._deadline) as deadline:
                return await call()
        except _UNAVAILABLE as exc:
            reason = f"no answer within {self._deadline:g} s" if deadline.expired() else str(exc)
            raise self.unavailable(operation, key, reason, time.monotonic() - started) from exc
        except RedisError as exc:
            raise StateError(f"Redis at {self._url} refused {operation}({key!r}): {exc}") from exc

    def unavailable(self, operation: str, key: str, reason: str, spent: float) -> StateUnavailable:
        """Build the error raised when Redis did not answer `operation` in time."""
        target = f"{operation}({key!r})" if key else operation
        return StateUnavailable(
            f"shared state unavailable: Redis at {self._url} failed {target} "
            f"after retrying for {spent:.1f} s ({reason}); fall back or try again later",
            operation=operation,
            url=self._url,
        )


async def _confirmed(pubsub: PubSub, channel: str) -> None:
    """Subscribe and wait for Redis to confirm, so later publishes are surely delivered."""
    await pubsub.subscribe(channel)
    while True:
        message: dict[str, Any] | None = await pubsub.get_message(timeout=_SUBSCRIBE_POLL)
        if message is not None and message["type"] == "subscribe":
            return


class _Subscription:
    """Messages of one Redis subscription, in order, until the state closes."""

    def __init__(self, state: RedisState, pubsub: PubSub, channel: str) -> None:
        self._state = state
        self._pubsub = pubsub
        self._channel = channel
        self.closed = False

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> str:
        while not self.closed:
            started = time.monotonic()
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_SUBSCRIBE_POLL
                )
            except _UNAVAILABLE as exc:
                if self.closed:
                    break
                spent = time.monotonic() - started
                raise self._state.unavailable("subscribe", self._channel, str(exc), spent) from exc
            if message is not None and message["type"] == "message":
                return str(message["data"])
        raise StopAsyncIteration
