"""Experiment for bench/ivr_bench.py (`--backends sqlite+writer,postgres+writer`): the IVR
server's rating batches written by a second process, to measure whether moving the writes off
the AGI process's core would lift a burst's calls/s. Not part of `pingjia serve`.

The server process keeps its group commit (rating/db/batching.py) and sends each batch, pickled,
over a Unix socket to the writer, which runs the same `write_ratings` on its own services and
answers the outcomes; a session still closes only once its rating is committed. Frames are a
4-byte length and a pickle of (request id, payload); batches in flight are answered in any order.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable, Sequence
from typing import Any

HEADER = struct.Struct("!I")


def _frame(request_id: int, payload: object) -> bytes:
    data = pickle.dumps((request_id, payload), protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


async def _read(reader: asyncio.StreamReader) -> tuple[int, Any]:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    request_id, payload = pickle.loads(await reader.readexactly(size))
    return request_id, payload


def serve_writer(settings: Callable[[], object], path: str, ready: Any) -> None:
    """Child process: write the batches that arrive on `path` (a Unix socket); `ready` (a
    multiprocessing Event) is set once it listens."""
    from pingjia.composition import build_services
    from rating.ratings.writer import write_ratings

    async def main() -> None:
        services = await build_services(settings(), migrate=False)  # type: ignore[arg-type]
        tasks: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async def one(request_id: int, batch: list[Any]) -> None:
                try:
                    results: Sequence[object] = await write_ratings(services.ratings, batch)
                except Exception as exc:  # every request of the batch hears it, as in-process
                    results = [exc] * len(batch)
                writer.write(_frame(request_id, list(results)))

            while True:
                try:
                    request_id, batch = await _read(reader)
                except asyncio.IncompleteReadError:
                    return
                task = asyncio.create_task(one(request_id, batch))  # batches overlap
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        await asyncio.start_unix_server(handle, path)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class RemoteWrites:
    """The server side: a `Batcher` write function that hands each batch to the writer."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[list[Any]]] = {}
        self._next = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None

    async def connect(self, path: str) -> None:
        reader, self._writer = await asyncio.open_unix_connection(path)
        self._reading = asyncio.create_task(self._answers(reader))

    async def _answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                request_id, results = await _read(reader)
                self._waiting.pop(request_id).set_result(results)
        except asyncio.IncompleteReadError:  # the writer died: its batches fail, none hangs
            for future in self._waiting.values():
                future.set_exception(ConnectionError("the writer process went away"))
            self._waiting.clear()

    async def write(self, batch: Sequence[Any]) -> list[Any]:
        assert self._writer is not None, "connect first"
        self._next += 1
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = future
        self._writer.write(_frame(self._next, list(batch)))
        return await future
