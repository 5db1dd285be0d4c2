"""Outbox throughput: N rows in PostgreSQL posted to a fake central store that answers in 50 ms.

Creates a throw-away database, loads N outbox rows with generate_series (distinct ordering
keys, as N different evaluations), drains them with the real OutboxWorker against the fake
store of tests/fakes (a real HTTP server on 127.0.0.1), and prints posts per second.

    .venv/bin/python bench/outbox_bench.py --items 5000 --latency 0.05 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STORE = """
import asyncio, sys
sys.path.insert(0, "{root}")
from tests.fakes.central_store import FakeCentralStore
async def main():
    store = FakeCentralStore(latency={latency})
    print(await store.start(), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

from bridge.central import CentralStore  # noqa: E402
from bridge.outbox import OutboxWorker  # noqa: E402
from rating.db import engine as db  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
LOAD = """
INSERT INTO outbox (topic, ordering_key, idempotency_key, payload, attempts, next_attempt_at,
                    created_at)
SELECT 'central.rating', 'evaluation:' || g, 'rating-' || g,
       json_build_object('case_no', 'B' || g, 'satisfaction_code', '1', 'attempt', 1),
       0, $1::timestamptz, $1::timestamptz
FROM generate_series(1, $2::int) g;
"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    name = f"pingjia_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    now = datetime.now(UTC)
    # The fake store runs in a process of its own, as a real store would: sharing our event
    # loop would bill its CPU to the worker.
    store = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STORE.format(root=ROOT, latency=args.latency),
        stdout=asyncio.subprocess.PIPE,
    )
    assert store.stdout is not None
    store_url = (await store.stdout.readline()).decode().strip()
    try:
        await db.upgrade(url)
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
        await conn.execute(LOAD, now, args.items)
        await conn.execute("VACUUM ANALYZE outbox")
        await conn.close()
        engine = db.create_engine(url)
        sender = CentralStore(store_url)
        worker = OutboxWorker(
            db.sessionmaker(engine),
            sender,
            lambda: datetime.now(UTC),
            concurrency=args.concurrency,
            batch=args.batch,
        )
        started = time.perf_counter()
        tally = await worker.drain()
        seconds = time.perf_counter() - started
        await sender.close()
        await engine.dispose()
        async with aiohttp.ClientSession() as http:
            async with http.get(store_url + "/_requests") as response:
                requests = await response.json()
        keys = {r["headers"]["Idempotency-Key"] for r in requests}
        print(
            f"{tally.sent:,} posted ({len(requests):,} requests, {len(keys):,} keys) in "
            f"{seconds:.2f} s: {tally.sent / seconds:,.0f} posts/s with a "
            f"{args.latency * 1000:.0f} ms "
            f"store, concurrency {args.concurrency}, batch {args.batch}"
        )
    finally:
        if store.returncode is None:
            store.terminate()
        await store.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
