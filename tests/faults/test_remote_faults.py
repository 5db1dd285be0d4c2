"""The world outside failing: the central store answering 500, timing out, closing the
connection after it stored the item, answering slowly; the 12345 system down and then closing
the connection after it opened the ticket; Asterisk closing the AGI socket mid-command.

Counted on the throw-away PostgreSQL: every outbox item reaches the store once (by its key),
every ticket reaches the 12345 system under one number, a call cut off stores nothing half
done and the server keeps taking calls.
Bad inputs tried: each store fault on the first posts then a healthy store; the 12345 system
refusing connections, then answering after closing the socket; an AGI connection closed
before the environment ends, and one closed while the server waits for a command's reply.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import Simulator, environment
from asterisk_sim.softphone import prompt_sounds
from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from bridge.ticket_system import TicketTransfer
from pingjia.composition import Services, build_services
from pingjia.ivr_server import start_agi
from prompts.catalog import AUDIO
from rating.cases.registration import ServiceRecord
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.fakes.ticket_system import FakeTicketSystem
from tests.faults.ledger import read_ledger
from tests.throwaway import free_port

pytestmark = pytest.mark.postgres

N = 8


@pytest.fixture
async def svc(fault_db: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    built = await build_services(
        make_settings(fault_db, tmp_path, agi_port=0),
        migrate=False,
        clock=clock,
        state=MemoryState(),
    )
    yield built
    await built.close()


async def rate_bad(services: Services, n: int = N) -> None:
    now = services.clock()
    for i in range(n):
        case_no = f"R{i:04d}"
        await services.ratings.register(
            ServiceRecord(case_no, "complaint", "13812345678", now - timedelta(hours=1)),
            actor="test",
            now=now,
        )
        await services.ratings.rate(
            RatingRequest(case_no, 4, "api", tags=["staff_passive"]), actor="test", now=now
        )


class ClosingStore(FakeCentralStore):
    """Stores the item, then closes the connection before answering: the poster never
    hears that its post arrived."""

    close_next: int = 0

    async def _accept(self, request: web.Request) -> web.Response:
        answer = await super()._accept(request)
        if self.close_next > 0 and request.transport is not None:
            self.close_next -= 1
            request.transport.abort()
        return answer


async def drain_until_delivered(worker: OutboxWorker, clock: FakeClock, rounds: int = 6) -> None:
    for _ in range(rounds):
        await worker.drain()
        clock.advance(minutes=30)  # past any backoff


@pytest.mark.parametrize("fault", ["500", "timeout", "closed after storing", "slow"])
async def test_central_store_faults_deliver_every_item_once(
    svc: Services, clock: FakeClock, fault: str
) -> None:
    await rate_bad(svc)
    expected = sum((await read_ledger(svc.sessions)).outbox.values())
    store = ClosingStore()
    await store.start()
    if fault == "500":
        store.script("/ratings", 500, {"error": "down"}, times=N)
    elif fault == "timeout":
        store.script("/ratings", 200, times=3, delay=1.0)  # past the 0.3 s timeout
    elif fault == "closed after storing":
        store.close_next = N
    else:
        store.latency = 0.1  # slow, within the timeout
    worker = OutboxWorker(svc.sessions, CentralStore(store.url, timeout=0.3), clock)
    try:
        await drain_until_delivered(worker, clock)
    finally:
        await worker.sender.close()  # type: ignore[attr-defined]
        await store.stop()
    ledger = await read_ledger(svc.sessions)
    assert ledger.outbox_sent == expected and ledger.outbox_waiting == ledger.outbox_dead == 0
    assert len(store.stored) == expected  # each item once, by its key
    posted_keys = {r.headers["Idempotency-Key"] for r in store.requests}
    assert posted_keys == set(store.stored)
    if fault != "slow":
        assert len(store.requests) > expected  # the fault made the worker post again


async def test_the_12345_system_down_then_closing_gets_each_ticket_once(
    svc: Services, clock: FakeClock
) -> None:
    await rate_bad(svc)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    transfer = TicketTransfer(svc.sessions, svc.profile, down, "https://pj.example", clock)
    try:
        assert await transfer(clock()) == 0
        fake = FakeTicketSystem()
        await fake.start()
        transfer.http.base_url = fake.url  # the system is back
        fake.script("/tickets", 503, times=2)
        for _ in range(6):
            clock.advance(minutes=30)
            await transfer(clock())
        await fake.stop()
    finally:
        await transfer.close()
    ledger = await read_ledger(svc.sessions)
    assert ledger.tickets == N == len(fake.tickets)
    assert all(t.get("ticket_no") for t in fake.tickets.values())
    transferred = [r.json["ticket_no"] for r in fake.to("/tickets") if r.answered == 200]
    assert sorted(transferred) == sorted(fake.tickets)  # each ticket answered once


async def test_asterisk_closing_the_socket_mid_command(svc: Services) -> None:
    now = svc.clock()
    for case_no in ("A1", "A2"):
        await svc.ratings.register(
            ServiceRecord(case_no, "complaint", None, now - timedelta(hours=1)),
            actor="test",
            now=now,
        )
    server = await start_agi(svc)
    try:
        # Closed inside the environment block.
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network: yes\nagi_request: agi://127.0.0.1/rating?case=A1\n")
        await writer.drain()
        writer.close()
        # Closed while the server waits for the reply to its first command.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        block = environment("127.0.0.1", server.port, "rating", ["case=A1"], "1700000000.1")
        writer.write(("".join(f"{k}: {v}\n" for k, v in block) + "\n").encode())
        block_done = await asyncio.wait_for(reader.readline(), 5)
        assert block_done  # a command was sent to us
        writer.close()
        await asyncio.sleep(0.2)
        # The server keeps serving: a whole call right after.
        sounds = prompt_sounds(AUDIO)
        result = await Simulator(ScriptedCaller([Key("2")]), sounds).call(
            "127.0.0.1", server.port, "rating?case=A2"
        )
        assert result.commands[-1:] == ["HANGUP"]
    finally:
        await server.close()
    ledger = await read_ledger(svc.sessions)
    assert ledger.ratings == ledger.adopted == 1  # A2 only; A1 waits for its default
    assert (await svc.ratings.evaluation("A1")).ratings == []


def wall_clock() -> datetime:
    return datetime.now(UTC)


async def test_a_slow_12345_system_and_two_nodes_transfer_each_ticket_once(
    svc: Services, clock: FakeClock
) -> None:
    """A batch that outlasts its lease: the second node claims what the first has not done
    yet; the first must not post those tickets too."""
    await rate_bad(svc)
    fake = FakeTicketSystem(latency=0.3)  # 8 tickets one by one: 2.4 s, the lease is 1 s
    await fake.start()
    lease = timedelta(seconds=1)
    nodes = [
        TicketTransfer(
            svc.sessions,
            svc.profile,
            fake.url,
            "https://pj.example",
            wall_clock,
            lease=lease,
            timeout=0.5,
        )
        for _ in range(2)
    ]
    try:
        first = asyncio.create_task(nodes[0](wall_clock()))
        await asyncio.sleep(1.3)
        second = asyncio.create_task(nodes[1](wall_clock()))
        await asyncio.gather(first, second)
        for _ in range(20):  # what neither finished comes back when the leases end
            if len(fake.tickets) == N:
                break
            await asyncio.sleep(0.2)
            await nodes[1](wall_clock())
    finally:
        for node in nodes:
            await node.close()
        await fake.stop()
    asked = Counter(r.json["ticket_no"] for r in fake.to("/tickets"))
    assert len(asked) == N
    assert [no for no, n in asked.items() if n > 1] == []  # no ticket posted twice
