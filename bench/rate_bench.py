"""The cost of one rating through the domain (RatingService.rate), which every channel pays.

Registers N cases, then rates each once (half 非常满意, half 不满意 with a tag, which opens a
ticket), sequentially or in bursts of concurrent requests (which the group commit writes
together), on SQLite (a temporary file) and on PostgreSQL (a database created on the local
server and dropped afterwards). Prints milliseconds per rating, ratings per second, and this
process's CPU per rating.

    .venv/bin/python bench/rate_bench.py --ratings 500
    .venv/bin/python bench/rate_bench.py --ratings 2000 --burst 200  # 200 at once, 10 times
    .venv/bin/python bench/rate_bench.py --ratings 500 --profile   # cProfile of the rating loop
    .venv/bin/python bench/rate_bench.py --ratings 5000 --burst 1000 --bad-only  # an IVR burst

On PostgreSQL it also prints the CPU the database's own processes used per rating (all
`postgres` processes on this machine, from /proc: run it on a quiet server). The collector is
settled as `pingjia serve` settles it (pingjia/runtime.py).
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
from procstat import postgres_cpu_s

from pingjia.composition import build_services
from pingjia.runtime import settle_gc
from pingjia.settings import Settings
from rating.cases.registration import ServiceRecord
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


BAD_ONLY = False  # --bad-only: every rating 不满意 with a tag, opening a ticket (as ivr_bench)


def request(i: int) -> RatingRequest:
    bad = BAD_ONLY or i % 2 == 1
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
) -> tuple[float, float, float]:
    settings = Settings(_env_file=None, database_url=url, secret_key="bench", data_dir=data_dir)  # type: ignore[call-arg]
    services = await build_services(settings, state=MemoryState())
    now = datetime.now(UTC)
    try:
        for i in range(n):
            record = ServiceRecord(f"R{i}", "complaint", "13812345678", now)
            await services.ratings.register(record, actor="bench", now=now)
        profiler = cProfile.Profile() if profile else None
        settle_gc()
        server = postgres_cpu_s()
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        rate = services.ratings.rate
        for first in range(0, n, burst):
            ids = range(first, min(n, first + burst))
            await asyncio.gather(*(rate(request(i), actor="bench", now=now) for i in ids))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        server = postgres_cpu_s() - server
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return elapsed / n, cpu / n, server / n
    finally:
        await services.close()


def line(name: str, per: float, cpu: float, server: float | None = None) -> str:
    text = (
        f"{name:11} {per * 1000:6.2f} ms/rating  {1 / per:7.1f} ratings/s  "
        f"{cpu * 1000:5.2f} CPU ms/rating"
    )
    if server is not None:
        text += f"  (PostgreSQL's processes: {server * 1000:5.2f} CPU ms/rating)"
    return text


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=500)
    parser.add_argument("--burst", type=int, default=1, help="ratings requested at once")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--bad-only", action="store_true", help="every rating opens a ticket (an IVR burst)"
    )
    args = parser.parse_args()
    global BAD_ONLY
    BAD_ONLY = args.bad_only
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite+aiosqlite:///{tmp}/bench.db"
        per, cpu, _ = await measure(sqlite, tmp, args.ratings, args.burst, args.profile)
        print(line("sqlite", per, cpu))
        name = f"pingjia_rate_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
            per, cpu, server = await measure(url, tmp, args.ratings, args.burst, args.profile)
            print(line("postgresql", per, cpu, server))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
