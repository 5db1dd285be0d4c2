"""The AGI port under bad peers: slow-loris connections, half-sent environments and oversized
lines are each closed within the header timeout (small here: 0.3 s) and bounded in memory
(16 KiB per environment), and a real call goes through meanwhile.

Bad inputs tried here: 40 connections trickling an environment byte by byte, 40 that send
half an environment and stay open, an environment of 20 KiB without its blank line.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ivr.server import MAX_HEADER_BYTES, AgiServer
from tests.test_ivr_agi import call, echo_flow

HALF = b"agi_network: yes\nagi_request: agi://127.0.0.1/rating\nagi_chan"


@pytest.fixture
async def server() -> Any:
    agi = AgiServer({"rating": echo_flow}, header_timeout=0.3)
    await agi.start("127.0.0.1", 0)
    yield agi
    await agi.close(grace=0.2)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """The server closed the connection: an end of stream, or a reset (the kernel answers a
    close with RST when a trickled byte arrived after the server's last read, seen in CI)."""
    try:
        return await asyncio.wait_for(reader.read(), 3) == b""
    except ConnectionResetError:
        return True


async def test_slow_and_half_sent_peers_are_cut_off_in_time(server: AgiServer) -> None:
    peers = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(80)]
    started = time.monotonic()
    for n, (_, writer) in enumerate(peers):
        writer.write(HALF if n % 2 else HALF[:1])  # half an environment, or a first byte
    trickle = True

    async def keep_trickling() -> None:
        while trickle:  # a byte every 50 ms on the slow half: never a whole block
            for _, writer in peers[::2]:
                if not writer.is_closing():
                    writer.write(b"a")
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(keep_trickling())
    # A real call is served while 80 bad peers hold connections.
    assert (await call(server, "rating?case=C1", "1"))[-1] == "HANGUP"
    closed = await asyncio.gather(*(closed_by_server(reader) for reader, _ in peers))
    trickle = False
    await dripping
    took = time.monotonic() - started
    assert all(closed)
    assert took < 2.0, took  # each cut off at its header timeout, not later
    assert server.rejected == 80
    assert not server.active
    for _, writer in peers:
        writer.close()


async def test_an_oversized_environment_is_refused(server: AgiServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_x: " + b"y" * (MAX_HEADER_BYTES + 4096) + b"\n")
    await writer.drain()
    assert await closed_by_server(reader)
    assert server.rejected == 1
    writer.close()
    assert (await call(server, "rating?case=C2", "2"))[-1] == "HANGUP"
