"""A bare AGI server for tests: accepts one session and lets the test send raw lines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    environment: list[tuple[str, str]]

    async def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def line(self) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), 5)
        return raw.decode().rstrip("\n")

    async def ask(self, command: str, lines: int = 1) -> list[str]:
        await self.send(command)
        return [await self.line() for _ in range(lines)]


@contextlib.asynccontextmanager
async def raw_agi_server() -> AsyncIterator[tuple[int, asyncio.Queue[Session]]]:
    """Yield (port, queue of sessions); each session starts after the environment block."""
    sessions: asyncio.Queue[Session] = asyncio.Queue()
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        block = await reader.readuntil(b"\n\n")
        pairs = [
            (name, value)
            for name, _, value in (
                line.partition(": ") for line in block.decode().split("\n") if line
            )
        ]
        await sessions.put(Session(reader, writer, pairs))
        await done.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], sessions
    finally:
        done.set()
        server.close()
        await server.wait_closed()
