"""Default-rating sweep over 1,000,000 evaluations in PostgreSQL, with N of them due.

Creates a throw-away database on the local server, bulk-loads it with generate_series (no ORM),
prints the EXPLAIN (ANALYZE, BUFFERS) plan of the claim query the sweep runs, the time to claim
every due row in batches, and the time of a real sweep over the first `--rate` due rows
(RatingService.rate_defaults: one transaction per claimed batch of 200). Then drops the database.

    .venv/bin/python bench/sweep_bench.py --due 1000 10000 100000 --rate 2000
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import text, update
from sqlalchemy.dialects import postgresql

from rating.cases.models import Evaluation
from rating.db import engine as db
from rating.sweeps.claims import DEFAULT_SWEEP, ClaimRepository, due_defaults_query

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

LOAD = """
INSERT INTO cases (id, case_no, kind, source, completed_at, created_at)
SELECT g, 'B' || g, 'consultation', 'api', $1::timestamptz - interval '8 days', $1::timestamptz
FROM generate_series(1, $2::int) g;
"""
# The first `due` rows are pending past their default time; of the rest, half were rated
# long ago and half are pending but not due yet (the realistic mix the index must skip).
LOAD_EVALUATIONS = """
INSERT INTO evaluations (id, case_id, status, profile, default_due_at, created_at, updated_at)
SELECT g, g,
       CASE WHEN g <= $3 OR g % 2 = 1 THEN 'pending' ELSE 'rated' END,
       'taishan',
       CASE WHEN g <= $3 THEN $1::timestamptz - interval '1 hour' * (1 + g % 48)
            WHEN g % 2 = 1 THEN $1::timestamptz + interval '1 hour' * (1 + g % 160)
            ELSE $1::timestamptz - interval '20 days' END,
       $1::timestamptz, $1::timestamptz
FROM generate_series(1, $2::int) g;
"""


async def load(dsn: str, now: datetime, total: int, due: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "TRUNCATE cases, evaluations, sweep_claims, ratings, outbox, tickets, audit_log CASCADE"
        )
        await conn.execute(LOAD, now, total)
        await conn.execute(LOAD_EVALUATIONS, now, total, due)
        for table in ("cases", "evaluations"):
            await conn.execute(f"SELECT setval('{table}_id_seq', {total})")
        await conn.execute("VACUUM ANALYZE cases")
        await conn.execute("VACUUM ANALYZE evaluations")
    finally:
        await conn.close()


async def explain(url: str, now: datetime, batch: int) -> str:
    query = due_defaults_query(now, batch)
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        rows = (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))).scalars().all()
        await conn.rollback()
    await engine.dispose()
    return "\n".join(rows)


async def claim_all(url: str, now: datetime, batch: int) -> tuple[int, float]:
    """Claim every due row in batches, as the sweep does, with the rating itself replaced by a
    bare status update (so this measures the claim, not RatingService.rate)."""
    engine = db.create_engine(url)
    sessions = db.sessionmaker(engine)
    claimed = 0
    started = time.perf_counter()
    while True:
        async with sessions() as session:
            repo = ClaimRepository(session)
            got = await repo.claim_due_defaults(now, "bench", now + timedelta(minutes=5), batch)
            await session.commit()
            if not got:
                break
            ids = [i for i, _ in got]
            await session.execute(
                update(Evaluation).where(Evaluation.id.in_(ids)).values(status="defaulted")
            )
            await repo.release(DEFAULT_SWEEP, ids)
            await session.commit()
        claimed += len(got)
    elapsed = time.perf_counter() - started
    async with engine.begin() as conn:
        # Put the rows back for the real sweep that follows.
        await conn.execute(
            text("UPDATE evaluations SET status = 'pending' WHERE status = 'defaulted'")
        )
    await engine.dispose()
    return claimed, elapsed


async def real_sweep(url: str, now: datetime, count: int) -> tuple[int, float]:
    """The sweep itself (one rate_defaults transaction per claimed batch) over `count` due rows."""
    from pingjia.composition import build_services
    from pingjia.settings import Settings
    from rating.state import MemoryState
    from scheduler.sweeps import DefaultRatings

    settings = Settings(
        _env_file=None, database_url=url, secret_key="bench", data_dir="/tmp/pingjia-bench"
    )  # type: ignore[call-arg]
    services = await build_services(settings, migrate=False, state=MemoryState())
    sweep = DefaultRatings(
        services.sessions, services.ratings, "bench", batch=200, max_batches=count // 200
    )
    started = time.perf_counter()
    done = await sweep(now)
    elapsed = time.perf_counter() - started
    await services.close()
    return done, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--rate", type=int, default=2_000, help="due rows to rate for real")
    args = parser.parse_args()
    name = f"pingjia_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    try:
        await db.upgrade(url)
        for due in args.due:
            started = time.perf_counter()
            await load(dsn, now, args.total, due)
            print(
                f"\n=== {args.total:,} evaluations, {due:,} due "
                f"(loaded in {time.perf_counter() - started:.1f} s)"
            )
            print(await explain(url, now, args.batch))
            claimed, seconds = await claim_all(url, now, args.batch)
            print(
                f"claim all due rows in batches of {args.batch}: {claimed:,} in {seconds:.2f} s "
                f"({claimed / seconds:,.0f} rows/s)"
            )
            count = min(args.rate, due)
            if count >= 200:
                done, seconds = await real_sweep(url, now, count)
                print(
                    f"real sweep (rate_defaults per batch of 200): {done:,} defaulted in "
                    f"{seconds:.2f} s "
                    f"({done / seconds:,.0f}/s)"
                )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
