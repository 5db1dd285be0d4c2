"""Tencent Cloud SMS sends per second: the real provider (SDK async client, TC3 signing,
httpx) against the fake Tencent endpoint answering each request after 50 ms.

The fake runs in a process of its own, as Tencent would (its work is not ours); this process
sends `--messages` invitations, at most `--concurrency` in flight (the provider's slots and
connection pool, as PINGJIA_SMS_CONCURRENCY sizes them through ProviderContext.connections),
then checks with the fake that every message reached it exactly once (its SessionContext).
No database: this is the provider's own ceiling, not the invitation sweep's.

    .venv/bin/python bench/tencent_sms_bench.py [--messages 3000] [--concurrency 128]
        [--latency 0.05] [--rounds 3] [--httpcore]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sms.providers import OutboundSms, ProviderError  # noqa: E402
from sms.providers.tencent import TencentSmsProvider, TencentSmsSettings  # noqa: E402
from tests.fakes.tencent_sms import APP_ID, SECRET_ID, SECRET_KEY  # noqa: E402

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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--httpcore", action="store_true", help="send over httpx's default transport instead"
    )
    args = parser.parse_args()
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
        print(f"median {statistics.median(rates):,.0f}/s (target 500/s)")
    finally:
        fake.terminate()
        await fake.wait()


if __name__ == "__main__":
    asyncio.run(main())
