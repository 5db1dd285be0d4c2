"""Tencent Cloud SMS sends per second: the real provider (SDK async client, TC3 signing,
httpx) against the fake Tencent endpoint answering each request after 50 ms.

The fake runs in a process of its own, as Tencent would (its work is not ours); this process
sends `--messages` invitations, at most `--concurrency` in flight (the provider's slots and
connection pool, as PINGJIA_SMS_CONCURRENCY sizes them through ProviderContext.connections),
then checks with the fake that every message reached it exactly once (its SessionContext).
No database: this is the provider's own ceiling, not the invitation sweep's.

`--sweep N`: then the invitation sweep itself (`send_due_invitations` on a throw-away
PostgreSQL database, PINGJIA_SMS_PROVIDER=tencent, `--concurrency` in flight), N cases
registered up front; each invitation must reach the fake once.

    .venv/bin/python bench/tencent_sms_bench.py [--messages 3000] [--concurrency 128]
        [--latency 0.05] [--rounds 3] [--httpcore] [--sweep 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sms_bench import DAYTIME, register_many  # noqa: E402

from pingjia import logs  # noqa: E402
from pingjia.composition import build_services  # noqa: E402
from pingjia.settings import Settings  # noqa: E402
from rating.policy.profile import TEMPLATE_NAMES  # noqa: E402
from rating.state import MemoryState  # noqa: E402
from sms.providers import OutboundSms, ProviderError  # noqa: E402
from sms.providers.tencent import TencentSmsProvider, TencentSmsSettings  # noqa: E402
from tests.fakes.tencent_sms import APP_ID, SECRET_ID, SECRET_KEY  # noqa: E402
from tests.services import postgres_database  # noqa: E402

CODES = {name: str(1_987_000 + n) for n, name in enumerate(TEMPLATE_NAMES)}

PARAMS = {"case_no": "C2026112000001", "link": "pj.example.cn/r/Ab3"}


async def start_fake(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake Tencent endpoint in its own process; its URL."""
    fake = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.tencent_sms",
        str(latency),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert fake.stdout is not None
    return fake, (await fake.stdout.readline()).decode().strip()


async def one_round(
    url: str, messages: int, concurrency: int, round_no: int, httpcore: bool
) -> tuple[float, float]:
    """Send `messages` through a fresh provider; (sends per second, CPU ms per send)."""
    settings = TencentSmsSettings(
        _env_file=None,  # type: ignore[call-arg]
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        app_id=APP_ID,
        endpoint=url,
    )
    provider = TencentSmsProvider(
        settings,
        signature="台山12345",
        template_codes={"invitation": "1987001"},
        clock=lambda: datetime.now(UTC),
        connections=concurrency,
    )
    if httpcore:  # the comparison: httpx's own pool, sized alike, in place of ours over aiohttp
        await provider.client.http_client.aclose()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        provider.client.http_client = httpx.AsyncClient(timeout=10.0, limits=limits)
    batch = [
        OutboundSms(f"138{n:08d}", "invitation", PARAMS, "", f"bench:{round_no}:{n}")
        for n in range(messages)
    ]
    try:
        cpu, started = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(provider.send(m) for m in batch), return_exceptions=True)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await provider.close()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        kinds = Counter(
            type(f).__name__ + (": " + str(f) if isinstance(f, ProviderError) else "")
            for f in failed
        )
        raise SystemExit(f"{len(failed)} sends failed: {kinds.most_common(3)}")
    async with aiohttp.ClientSession() as session, session.get(url + "/_requests") as answer:
        seen = Counter(
            str(body.get("SessionContext"))
            for body in await answer.json()
            if str(body.get("SessionContext")).startswith(f"bench:{round_no}:")
        )
    if len(seen) != messages or set(seen.values()) != {1}:
        raise SystemExit(
            f"round {round_no}: {len(seen)} distinct messages, counts {set(seen.values())}"
        )
    return messages / elapsed, cpu * 1000 / messages


async def seen(url: str, prefix: str) -> Counter[str]:
    """How often the fake got each SessionContext starting with `prefix`."""
    async with aiohttp.ClientSession() as session, session.get(url + "/_requests") as answer:
        return Counter(
            str(body.get("SessionContext"))
            for body in await answer.json()
            if str(body.get("SessionContext")).startswith(prefix)
        )


async def sweep(url: str, invitations: int, concurrency: int) -> None:
    """The invitation sweep on PostgreSQL, sending through Tencent (module docstring)."""
    databases = postgres_database()
    clock = [DAYTIME]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=next(databases),
        secret_key="bench",
        data_dir=Path(tempfile.mkdtemp()),
        public_url="https://12345.example.gov.cn",
        sms_provider="tencent",
        sms_callback_key="tencent-bench-callback-key-000",
        sms_template_codes=json.dumps(CODES),
        sms_concurrency=concurrency,
        log_level="WARNING",
    )
    block = TencentSmsSettings(
        _env_file=None,  # type: ignore[call-arg]
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        app_id=APP_ID,
        endpoint=url,
    )
    services = await build_services(
        settings, clock=lambda: clock[0], state=MemoryState(), sms_settings=block
    )
    try:
        await register_many(services, "TC", invitations, DAYTIME)
        clock[0] = DAYTIME + timedelta(minutes=3)
        cpu, started, total = time.process_time(), time.perf_counter(), 0
        while sent := await services.sms.send_due_invitations(clock[0]):
            total += sent
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await services.close()
        databases.close()
    counts = await seen(url, "invitation:")
    if total != invitations or len(counts) != invitations or set(counts.values()) != {1}:
        raise SystemExit(f"sweep: {total} sent, {len(counts)} distinct at the fake")
    print(
        f"sweep (PostgreSQL): {total} invitations in {elapsed:.2f} s = {total / elapsed:,.0f}/s "
        f"at {concurrency} in flight, each reached the fake Tencent once; "
        f"{cpu * 1000 / max(total, 1):.2f} ms CPU per invitation in this process",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--httpcore", action="store_true", help="send over httpx's default transport instead"
    )
    parser.add_argument("--sweep", type=int, default=0, help="then N invitations by the sweep")
    args = parser.parse_args()
    logs.configure("WARNING")
    fake, url = await start_fake(args.latency)
    try:
        rates = []
        for round_no in range(1, args.rounds + 1):
            rate, cpu_ms = await one_round(
                url, args.messages, args.concurrency, round_no, args.httpcore
            )
            rates.append(rate)
            print(
                f"round {round_no}: {args.messages} sends, each reached the fake once: "
                f"{rate:,.0f}/s, {cpu_ms:.2f} ms CPU per send in this process",
                flush=True,
            )
        if rates:
            print(f"median {statistics.median(rates):,.0f}/s (target 500/s)")
        if args.sweep:
            await sweep(url, args.sweep, args.concurrency)
    finally:
        fake.terminate()
        await fake.wait()


if __name__ == "__main__":
    asyncio.run(main())
