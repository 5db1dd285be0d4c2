"""The cost of one rating through the domain (RatingService.rate), which every channel pays.

Registers N cases, then rates each once (half 非常满意, half 不满意 with a tag, which opens a
ticket), sequentially or in bursts of concurrent requests (which the group commit writes
together), on SQLite (a temporary file) and on PostgreSQL (a database created on the local
server and dropped afterwards). Prints milliseconds per rating, ratings per second, and this
process's CPU per rating.

    .venv/bin/python bench/rate_bench.py --ratings 500
    .venv/bin/python bench/rate_bench.py --ratings 2000 --burst 200  # 200 at once, 10 times
    .venv/bin/python bench/rate_bench.py --ratings 500 --profile   # cProfile of the rating loop
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from pingjia.composition import build_services
from pingjia.settings import Settings
from rating.service import RatingRequest, ServiceRecord
from rating.state import MemoryState

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def request(i: int) -> RatingRequest:
    bad = i % 2 == 1
    return RatingRequest(
        f"R{i}",
        4 if bad else 1,
        "ivr",
        ["staff_passive"] if bad else None,
        source_ref=f"bench:{i}",
        require_reason=False,
    )


async def measure(
    url: str, data_dir: str, n: int, burst: int, profile: bool
) -> tuple[float, float]:
    settings = Settings(_env_file=None, database_url=url, secret_key="bench", data_dir=data_dir)  # type: ignore[call-arg]
    services = await build_services(settings, state=MemoryState())
    now = datetime.now(UTC)
    try:
        for i in range(n):
            record = ServiceRecord(f"R{i}", "complaint", "13812345678", now)
            await services.ratings.register(record, actor="bench", now=now)
        profiler = cProfile.Profile() if profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        rate = services.ratings.rate
        for first in range(0, n, burst):
            ids = range(first, min(n, first + burst))
            await asyncio.gather(*(rate(request(i), actor="bench", now=now) for i in ids))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return elapsed / n, cpu / n
    finally:
        await services.close()


def line(name: str, per: float, cpu: float) -> str:
    return (
        f"{name:11} {per * 1000:6.2f} ms/rating  {1 / per:7.1f} ratings/s  "
        f"{cpu * 1000:5.2f} CPU ms/rating"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=500)
    parser.add_argument("--burst", type=int, default=1, help="ratings requested at once")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite+aiosqlite:///{tmp}/bench.db"
        per, cpu = await measure(sqlite, tmp, args.ratings, args.burst, args.profile)
        print(line("sqlite", per, cpu))
        name = f"pingjia_rate_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
            per, cpu = await measure(url, tmp, args.ratings, args.burst, args.profile)
            print(line("postgresql", per, cpu))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
