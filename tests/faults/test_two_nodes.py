"""Two `pingjia serve` nodes on one PostgreSQL and one Redis (throw-away servers), one of them
killed with SIGKILL in the middle.

Asterisk spreads 60 rating calls over both FastAGI ports (as `hagi://` or a dialplan list
does) and sends a dead node's calls to the survivor; both nodes run every sweep (every second
here) and post to one fake central store, one fake 12345 system and one fake Twilio. Counted
at the end: 60 ratings, 60 tickets, 60 rating items posted to the store, 60 tickets
transferred, the overdue cases rated by default once, no SMS sent twice; the dead node's
leases (outbox items, transfers, default ratings) are taken over by the survivor within their
expiry (`PINGJIA_LEASE_S`).

Bad inputs tried: a node killed with calls in flight (a call cut off is dialled again on the
survivor: the case is rated once; a call that got HANGUP has its rating stored, since HANGUP
goes only after the commit), SMS invitations racing the calls that make them moot.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import Simulator
from asterisk_sim.softphone import prompt_sounds
from pingjia.composition import Services, build_services
from prompts.catalog import AUDIO
from rating.cases.registration import ServiceRecord
from rating.db import engine as db
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.ticket_system import FakeTicketSystem
from tests.fakes.twilio_api import FakeTwilio
from tests.faults.ledger import read_ledger
from tests.throwaway import ThrowawayRedis, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CALLS = 60
OVERDUE = 10  # cases nobody rates: the default-rating sweep's
LEASE_S = 4
SOUNDS = prompt_sounds(AUDIO)
SID, TOKEN = "AC" + "2" * 32, "two-nodes-token"


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    agi_port: int
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Fakes:
    store: FakeCentralStore
    tickets: FakeTicketSystem
    twilio: FakeTwilio


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    made = Fakes(FakeCentralStore(), FakeTicketSystem(), FakeTwilio())
    await made.store.start()
    await made.tickets.start()
    await made.twilio.start()
    yield made
    await made.store.stop()
    await made.tickets.stop()
    await made.twilio.stop()


def node_env(db: str, redis_url: str, fakes: Fakes, data: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PINGJIA_DATABASE_URL": db,
        "PINGJIA_REDIS_URL": redis_url,
        "PINGJIA_SECRET_KEY": "two-nodes-secret",  # shared: links and tokens work on both
        "PINGJIA_DATA_DIR": str(data),
        "PINGJIA_CENTRAL_STORE_URL": fakes.store.url,
        "PINGJIA_TICKET_SYSTEM_URL": fakes.tickets.url,
        "PINGJIA_SMS_PROVIDER": "twilio",
        "PINGJIA_SMS_CALLBACK_KEY": "two-nodes-callback-key",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+15005550006",
        "PINGJIA_TWILIO_API_URL": fakes.twilio.url,
        "PINGJIA_SWEEP_EVERY_S": "1",
        "PINGJIA_LEASE_S": str(LEASE_S),
        "PINGJIA_LOG_LEVEL": "INFO",
    }


def start_node(name: str, env: dict[str, str], tmp_path: Path) -> Node:
    agi_port, http_port = free_port(), free_port()
    log = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pingjia.cli", "serve"],
        env={**env, "PINGJIA_AGI_PORT": str(agi_port), "PINGJIA_HTTP_PORT": str(http_port)},
        cwd=tmp_path,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Node(name, process, agi_port, log)


async def wait_listening(node: Node) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert node.alive(), node.log.read_text()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", node.agi_port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{node.name} did not listen: {node.log.read_text()}")


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        if node.alive():
            node.process.terminate()
            try:
                node.process.wait(10)
            except subprocess.TimeoutExpired:
                node.process.kill()


async def register(db: str, tmp_path: Path) -> None:
    services: Services = await build_services(
        make_settings(db, tmp_path / "setup"), migrate=False, state=MemoryState()
    )
    now = datetime.now(UTC)
    try:
        for i in range(CALLS):
            await services.ratings.register(
                ServiceRecord(
                    f"N{i:04d}", "complaint", f"1380000{i:04d}", now - timedelta(hours=1)
                ),
                actor="test",
                now=now,
            )
        for i in range(OVERDUE):
            await services.ratings.register(
                ServiceRecord(f"D{i:04d}", "complaint", None, now - timedelta(days=8)),
                actor="test",
                now=now,
            )
    finally:
        await services.close()


async def dial(case_no: str, targets: list[Node]) -> str:
    """Asterisk's way: the first live node; a call cut off is dialled again on the next."""
    for _ in range(20):
        live = [n for n in targets if n.alive()]
        for node in live:
            # 不满意 (4), reason 3, # to skip the voice message: a 差评 that opens a ticket.
            caller = ScriptedCaller([Key("4"), Key("3"), Key("#")])
            try:
                result = await Simulator(caller, SOUNDS).call(
                    "127.0.0.1", node.agi_port, f"rating?case={case_no}"
                )
            except OSError:
                continue
            if result.commands[-1:] == ["HANGUP"]:  # the flow ended; else the node died
                return node.name
        await asyncio.sleep(0.2)
    raise AssertionError(f"{case_no}: no node took the call")


async def ratings_per_call(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    """How many ratings (adopted or not) each called case holds; 0 for a pending one."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT c.case_no, count(r.id) FROM cases c "
                "JOIN evaluations e ON e.case_id = c.id "
                "LEFT JOIN ratings r ON r.evaluation_id = e.id "
                "WHERE c.case_no LIKE 'N%' GROUP BY c.case_no"
            )
        )
        return Counter({str(case_no): int(n) for case_no, n in rows.all()})


async def wait_for(check: Callable[[], Awaitable[bool]], within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError("timed out")


@pytest.fixture
async def sessions(fault_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(fault_db, pool_size=2)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_two_nodes_one_killed_store_everything_once(
    fault_db: str,
    fault_redis: ThrowawayRedis,
    fakes: Fakes,
    nodes: list[Node],
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    await register(fault_db, tmp_path)
    redis_url = fault_redis.url(0)
    a_env = node_env(fault_db, redis_url, fakes, tmp_path / "a")
    b_env = node_env(fault_db, redis_url, fakes, tmp_path / "b")
    a, b = start_node("a", a_env, tmp_path), start_node("b", b_env, tmp_path)
    nodes.extend([a, b])
    await asyncio.gather(wait_listening(a), wait_listening(b))

    gate = asyncio.Semaphore(6)
    taken: Counter[str] = Counter()

    async def one(i: int) -> None:
        order = [a, b] if i % 2 == 0 else [b, a]
        async with gate:
            taken[await dial(f"N{i:04d}", order)] += 1

    first = [asyncio.create_task(one(i)) for i in range(CALLS // 2)]
    await asyncio.sleep(1.0)  # calls in flight on both, sweeps and posts running on both
    b.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    b.process.wait(10)
    await asyncio.gather(*first)
    await asyncio.gather(*(one(i) for i in range(CALLS // 2, CALLS)))
    assert taken["b"] >= 1 and taken["a"] + taken["b"] == CALLS
    # Every call ended with HANGUP on some node (`dial` dials a cut call again), and HANGUP
    # goes only once the rating is committed: no case is left pending, not even one thanked
    # on the killed node a moment before the kill.
    rated = await ratings_per_call(sessions)
    assert len(rated) == CALLS and all(n == 1 for n in rated.values()), rated

    progress: list[object] = []

    async def settled() -> bool:
        ledger = await read_ledger(sessions)
        progress.append((ledger, len(fakes.store.stored), len(fakes.tickets.tickets)))
        return (
            len([k for k in fakes.store.stored if k]) >= ledger.outbox_sent
            and ledger.outbox_waiting == 0
            and ledger.adopted == CALLS + OVERDUE
            and len(fakes.tickets.tickets) == CALLS
        )

    try:
        await wait_for(settled, within=max(10.0, 50 - (time.monotonic() - began)))
    except AssertionError:
        tail = a.log.read_text().splitlines()[-30:]
        raise AssertionError(f"not settled: {progress[-1]}\n" + "\n".join(tail)) from None
    took_over_in = time.monotonic() - killed_at

    ledger = await read_ledger(sessions)
    # Ratings and tickets: each once.
    assert ledger.adopted == CALLS + OVERDUE and ledger.evaluations_adopted_twice == 0
    assert ledger.tickets == CALLS and ledger.cases_ticketed_twice == 0
    # The central store: every rating item once, though a repeat may have been posted.
    stored = Counter(item["path"] for item in fakes.store.stored.values())
    ratings_stored = [
        v["payload"]["case_no"] for v in fakes.store.stored.values() if v["path"] == "/ratings"
    ]
    assert len(ratings_stored) == len(set(ratings_stored)) == CALLS + OVERDUE, stored
    assert ledger.outbox_sent == sum(ledger.outbox.values()) == len(fakes.store.stored)
    # The 12345 system: every ticket once (a repeat carries the same ticket number).
    transferred = Counter(r.json["ticket_no"] for r in fakes.tickets.to("/tickets"))
    assert len(transferred) == CALLS
    # SMS (none fall due inside a minute: an invitation waits 2 minutes after registration;
    # sends once across a crash are tests/faults/test_webhooks_and_redis.py's): none twice.
    sent = Counter((r.form["To"], r.form["Body"]) for r in fakes.twilio.requests)
    assert all(n == 1 for n in sent.values()), [k for k, n in sent.items() if n > 1]
    assert took_over_in <= 45
    assert time.monotonic() - began <= 60
