"""One suite for both shared-state backends: what holds in memory must hold on Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from rating.state import (
    LockTimeout,
    MemoryState,
    RedisState,
    SharedState,
    StateError,
    StateUnavailable,
    make_state,
)
from rating.state.redis import redact_url

StateFactory = Callable[[str], SharedState]

CLOSED_PORT_URL = "redis://:s3cret@127.0.0.1:1/0"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """None for the memory backend; a flushed Redis URL for the Redis one."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def make(backend_url: str | None) -> AsyncIterator[StateFactory]:
    """Build states on the backend under test (one backend per test); closed afterwards."""
    made: list[SharedState] = []

    def factory(namespace: str) -> SharedState:
        made.append(make_state(backend_url, namespace))
        return made[-1]

    yield factory
    for state in made:
        await state.close()


@pytest.fixture
def state(make: StateFactory) -> SharedState:
    """A state under a namespace of its own."""
    return make(f"test-{uuid.uuid4().hex[:8]}:")


async def within(seconds: float, awaitable: Awaitable[object]) -> object:
    async with asyncio.timeout(seconds):
        return await awaitable


# --- claim / release -------------------------------------------------------------------


async def test_second_claim_is_refused(state: SharedState) -> None:
    assert await state.claim("call:1", ttl=5)
    assert not await state.claim("call:1", ttl=5)
    assert await state.claim("call:2", ttl=5)


async def test_claim_is_free_again_after_ttl(state: SharedState) -> None:
    assert await state.claim("sweep", ttl=0.2)
    await asyncio.sleep(0.3)
    assert await state.claim("sweep", ttl=0.2)
    assert not await state.claim("sweep", ttl=0.2)


async def test_release_frees_a_claim(state: SharedState) -> None:
    assert await state.claim("webhook:SM1", ttl=5)
    await state.release("webhook:SM1")
    assert await state.claim("webhook:SM1", ttl=5)
    await state.release("never-claimed")


async def test_bad_ttl_is_refused(state: SharedState) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await state.claim("x", ttl=0)


# --- rate limit ------------------------------------------------------------------------


async def test_rate_limit_allows_limit_then_refuses_until_window_ends(state: SharedState) -> None:
    results = [await state.hit("sms:hash1", limit=3, window=0.4) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.count for r in results] == [1, 2, 3, 4]
    assert [r.retry_after for r in results[:3]] == [0.0, 0.0, 0.0]
    refused = results[3]
    assert 0 < refused.retry_after <= 0.4
    assert (await state.hit("sms:hash2", limit=3, window=0.4)).allowed
    await asyncio.sleep(refused.retry_after + 0.05)
    again = await state.hit("sms:hash1", limit=3, window=0.4)
    assert again.allowed
    assert again.count == 1


# --- lock ------------------------------------------------------------------------------


async def test_lock_excludes_a_second_holder(state: SharedState) -> None:
    spans: list[tuple[float, float]] = []

    async def worker() -> None:
        for _ in range(3):
            async with state.lock("outbox", ttl=5, wait=5):
                start = time.monotonic()
                await asyncio.sleep(0.03)
                spans.append((start, time.monotonic()))

    await within(10, asyncio.gather(worker(), worker()))
    spans.sort()
    assert len(spans) == 6
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end <= next_start


async def test_lock_wait_runs_out_with_lock_timeout(state: SharedState) -> None:
    async with state.lock("outbox", ttl=5):
        started = time.monotonic()
        with pytest.raises(LockTimeout, match="outbox"):
            async with state.lock("outbox", ttl=5, wait=0.2):
                pytest.fail("acquired a held lock")
        assert 0.15 < time.monotonic() - started < 2
    async with state.lock("outbox", ttl=5, wait=0):
        pass


async def test_only_the_owner_releases_the_lock(state: SharedState) -> None:
    first_in = asyncio.Event()
    second_in = asyncio.Event()
    first_out = asyncio.Event()

    async def slow_first() -> None:
        async with state.lock("job", ttl=0.2):
            first_in.set()
            await second_in.wait()  # holds on after its ttl ran out
        first_out.set()

    async def second() -> None:
        await first_in.wait()
        async with state.lock("job", ttl=5, wait=2):  # gets it once the first expires
            second_in.set()
            await first_out.wait()
            # The first holder left: it must not have freed the second's lock.
            with pytest.raises(LockTimeout):
                async with state.lock("job", ttl=5, wait=0.1):
                    pytest.fail("the expired holder released someone else's lock")

    await within(5, asyncio.gather(slow_first(), second()))
    async with state.lock("job", ttl=5, wait=0):
        pass


# --- pub/sub ---------------------------------------------------------------------------


async def collect(messages: AsyncIterator[str], count: int) -> list[str]:
    received: list[str] = []
    async for message in messages:
        received.append(message)
        if len(received) == count:
            break
    return received


async def test_pubsub_delivers_in_order_to_every_subscriber(state: SharedState) -> None:
    await state.publish("tickets", "before anyone listened")
    sent = [f"ticket {i}" for i in range(20)] + ["好评 ✓"]
    async with state.subscribe("tickets") as one, state.subscribe("tickets") as two:
        for message in sent:
            await state.publish("tickets", message)
        got_one = await within(3, collect(one, len(sent)))
        got_two = await within(3, collect(two, len(sent)))
    assert got_one == sent
    assert got_two == sent


async def test_close_ends_subscriptions(make: StateFactory) -> None:
    state = make("test-close:")
    assert await state.ping()
    async with state.subscribe("news") as messages:
        listener = asyncio.create_task(collect(messages, 10))
        await asyncio.sleep(0.05)
        await state.close()
        assert await within(3, listener) == []
    assert not await state.ping()
    with pytest.raises(StateError, match="closed"):
        await state.claim("x", ttl=1)
    await state.close()


# --- namespaces ------------------------------------------------------------------------


async def test_namespaces_isolate(make: StateFactory) -> None:
    taishan, sanmenxia = make("taishan:"), make("sanmenxia:")
    assert await taishan.claim("call:1", ttl=5)
    assert await sanmenxia.claim("call:1", ttl=5)
    assert (await taishan.hit("sms", limit=1, window=5)).allowed
    assert (await sanmenxia.hit("sms", limit=1, window=5)).allowed
    async with taishan.lock("sweep", ttl=5), sanmenxia.lock("sweep", ttl=5, wait=0):
        pass
    async with sanmenxia.subscribe("news") as messages:
        await taishan.publish("news", "for taishan")
        await sanmenxia.publish("news", "for sanmenxia")
        assert await within(3, collect(messages, 1)) == ["for sanmenxia"]


async def test_kinds_do_not_collide(state: SharedState) -> None:
    assert await state.claim("same", ttl=5)
    assert (await state.hit("same", limit=1, window=5)).allowed
    async with state.lock("same", ttl=5, wait=0):
        assert not await state.claim("same", ttl=5)


@pytest.mark.redis
async def test_redis_states_with_one_namespace_share(redis_url: str) -> None:
    one, two = RedisState(redis_url, "shared:"), RedisState(redis_url, "shared:")
    try:
        assert await one.claim("call:1", ttl=5)
        assert not await two.claim("call:1", ttl=5)
        async with two.subscribe("news") as messages:
            await one.publish("news", "hello")
            assert await within(3, collect(messages, 1)) == ["hello"]
    finally:
        await one.close()
        await two.close()


# --- Redis down: no server needed ------------------------------------------------------


@pytest.fixture
async def down() -> AsyncIterator[RedisState]:
    state = RedisState(CLOSED_PORT_URL)
    yield state
    await state.close()


OPERATIONS: dict[str, Callable[[RedisState], Awaitable[object]]] = {
    "claim": lambda s: s.claim("call:1", ttl=5),
    "release": lambda s: s.release("call:1"),
    "hit": lambda s: s.hit("sms", limit=1, window=5),
    "publish": lambda s: s.publish("news", "hello"),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_redis_down_raises_state_unavailable(down: RedisState, operation: str) -> None:
    started = time.monotonic()
    with pytest.raises(StateUnavailable) as caught:
        await within(5, OPERATIONS[operation](down))
    assert time.monotonic() - started < 4
    message = str(caught.value)
    assert operation in message
    assert "127.0.0.1:1" in message
    assert "s3cret" not in message
    assert caught.value.operation == operation
    assert isinstance(caught.value, StateError)


async def test_redis_down_lock_and_subscribe_raise_state_unavailable(down: RedisState) -> None:
    with pytest.raises(StateUnavailable, match="lock"):
        async with down.lock("sweep", ttl=5):
            pytest.fail("locked without Redis")
    with pytest.raises(StateUnavailable, match="subscribe"):
        async with down.subscribe("news"):
            pytest.fail("subscribed without Redis")
    assert not await within(5, down.ping())


@pytest.fixture
async def stalled_url() -> AsyncIterator[str]:
    """A server that accepts connections and never answers (a hung Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_stalled_redis_hits_the_deadline(stalled_url: str) -> None:
    state = RedisState(stalled_url, socket_timeout=0.2, deadline=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(StateUnavailable, match="claim"):
            await within(5, state.claim("call:1", ttl=5))
    finally:
        await state.close()
    assert time.monotonic() - started < 2


# --- construction ----------------------------------------------------------------------


async def test_make_state_picks_the_backend() -> None:
    memory = make_state(None)
    redis_state = make_state("redis://127.0.0.1:1/0", namespace="x:")
    try:
        assert isinstance(memory, MemoryState)
        assert memory.namespace == "pingjia:"
        assert isinstance(redis_state, RedisState)
        assert redis_state.namespace == "x:"
    finally:
        await memory.close()
        await redis_state.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:pw@host/1", "rediss://user:***@host/1"),
        ("redis://user@host/1", "redis://user@host/1"),
        ("redis://host/0?password=pw&db=2", "redis://host/0?password=%2A%2A%2A&db=2"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


async def test_memory_ttls_follow_the_given_clock() -> None:
    now = [100.0]
    state = MemoryState(clock=lambda: now[0])
    assert await state.claim("k", ttl=10)
    now[0] += 9.9
    assert not await state.claim("k", ttl=10)
    now[0] += 0.2
    assert await state.claim("k", ttl=10)
