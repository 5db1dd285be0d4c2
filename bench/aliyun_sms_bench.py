"""Aliyun SMS: invitations per second through the fake Aliyun endpoint at 50 ms per request,
and citizens' replies per second pushed as Aliyun pushes them (SmsUpReport arrays of 100)
beside the Twilio webhook, in the same run, on PostgreSQL.

1. `provider`: the real provider (the SDK's async SendSms, POP v3 signing, our one aiohttp
   session) sends `--messages` invitations, at most `--concurrency` in flight, to the fake
   Aliyun in a process of its own answering each after 50 ms; the fake's record must show
   every OutId exactly once. `--sdk-session` runs the same with the SDK's own transport (a new
   aiohttp session per call), the comparison. No database: the provider's own ceiling.
2. `sweep`: the invitation sweep (`send_due_invitations`, PostgreSQL) with
   PINGJIA_SMS_PROVIDER=aliyun (128 in flight), `--invitations` cases registered up front;
   each must reach the fake once.
3. `replies`: a pingjia server in its own process, with the Twilio webhook and Aliyun's
   callbacks on the same services and database. `--replies` signed Twilio replies (one POST
   each, `--clients` in flight), then as many Aliyun replies in arrays of 100 (`--pushes` in
   flight); each load's rate is taken until the database shows every reply stored, handled
   (rated `５ 态度太差`, its ticket opened) and confirmed. Per reply: wall time and the
   server's CPU. `--reply-rounds` rounds with fresh cases, alternating which load goes first.

    .venv/bin/python bench/aliyun_sms_bench.py [--only provider|sweep|replies]
        [--messages 3000] [--concurrency 128] [--rounds 3] [--sdk-session]
        [--invitations 3000] [--replies 2000] [--clients 32] [--pushes 4] [--reply-rounds 2]

Needs the local PostgreSQL for `sweep` and `replies` (PINGJIA_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import cpu_s  # noqa: E402
from sms_bench import (  # noqa: E402
    CALLBACK_KEY,
    DAYTIME,
    build,
    handled,
    load,
    register_many,
    reply_forms,
    serve_in_child,
    until_up,
)
from sms_bench import start_fake as start_fake_twilio  # noqa: E402

from pingjia import logs  # noqa: E402
from pingjia.app import build_app  # noqa: E402
from pingjia.composition import Services, build_services  # noqa: E402
from pingjia.runtime import settle_gc  # noqa: E402
from pingjia.settings import Settings  # noqa: E402
from rating.policy.profile import TEMPLATE_NAMES  # noqa: E402
from rating.state import MemoryState  # noqa: E402
from sms.providers import (  # noqa: E402
    OutboundSms,
    ProviderError,
    aliyun_transport,
)
from sms.providers.aliyun import AliyunSmsProvider, AliyunSmsSettings, routes  # noqa: E402
from sms.providers.plugin import CallbackGuard  # noqa: E402
from sms.service import as_events  # noqa: E402
from tests.fakes.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, up_item  # noqa: E402
from tests.services import free_port, postgres_database  # noqa: E402

PARAMS = {"case_no": "C2026112000001", "link": "pj.example.cn/r/Ab3"}
CODES = {name: f"SMS_{460775000 + n}" for n, name in enumerate(TEMPLATE_NAMES)}
KEY = "aliyun-bench-callback-key-0000"
PUSH = 100  # items per SmsUpReport push


async def start_fake(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake Aliyun endpoint in its own process; its URL."""
    fake = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.aliyun_sms",
        str(latency),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert fake.stdout is not None
    return fake, (await fake.stdout.readline()).decode().strip()


def provider_for(url: str, connections: int, clock: Any = None) -> AliyunSmsProvider:
    settings = AliyunSmsSettings(
        _env_file=None,  # type: ignore[call-arg]
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        endpoint=url,
    )
    return AliyunSmsProvider(
        settings,
        signature="台山12345",
        template_codes=CODES,
        clock=clock or (lambda: datetime.now(UTC)),
        connections=connections,
    )


@contextlib.contextmanager
def sdk_session() -> Iterator[None]:
    """The comparison: the SDK's own transport, a new aiohttp session per call."""
    original = aliyun_transport.using

    @contextlib.contextmanager
    def nothing(session: aiohttp.ClientSession) -> Iterator[None]:
        yield

    aliyun_transport.using = nothing  # type: ignore[assignment]
    try:
        yield
    finally:
        aliyun_transport.using = original  # type: ignore[assignment]


async def seen_once(url: str, prefix: str, count: int) -> None:
    """The fake's record: each OutId starting with `prefix`, `count` of them, once each."""
    async with aiohttp.ClientSession() as session, session.get(url + "/_requests") as answer:
        seen = Counter(
            str(params.get("OutId"))
            for params in await answer.json()
            if str(params.get("OutId")).startswith(prefix)
        )
    if len(seen) != count or set(seen.values()) != {1}:
        raise SystemExit(f"{prefix}: {len(seen)} distinct messages, counts {set(seen.values())}")


async def provider_round(
    url: str, messages: int, concurrency: int, round_no: int
) -> tuple[float, float]:
    """Send `messages` through a fresh provider; (sends per second, CPU ms per send)."""
    provider = provider_for(url, concurrency)
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
    await seen_once(url, f"bench:{round_no}:", messages)
    return messages / elapsed, cpu * 1000 / messages


async def provider_bench(args: argparse.Namespace) -> None:
    fake, url = await start_fake(0.05)
    transport = "SDK's session per call" if args.sdk_session else "one reused session"
    try:
        with sdk_session() if args.sdk_session else contextlib.nullcontext():
            rates = []
            for round_no in range(1, args.rounds + 1):
                rate, cpu_ms = await provider_round(url, args.messages, args.concurrency, round_no)
                rates.append(rate)
                print(
                    f"provider ({transport}, {args.concurrency} in flight) round {round_no}: "
                    f"{args.messages} sends, each reached the fake once: {rate:,.0f}/s, "
                    f"{cpu_ms:.2f} ms CPU per send in this process",
                    flush=True,
                )
        print(f"provider median {statistics.median(rates):,.0f}/s (target 500/s)")
    finally:
        fake.terminate()
        await fake.wait()


async def build_aliyun(db_url: str, url: str, clock: list[datetime]) -> Services:
    """The services with PINGJIA_SMS_PROVIDER=aliyun pointed at the fake."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        secret_key="bench",
        data_dir=Path(tempfile.mkdtemp()),
        public_url="https://12345.example.gov.cn",
        sms_provider="aliyun",
        sms_callback_key=KEY,
        sms_template_codes=json.dumps(CODES),
        sms_concurrency=128,
        log_level="WARNING",
    )
    block = AliyunSmsSettings(
        _env_file=None,  # type: ignore[call-arg]
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        endpoint=url,
    )
    return await build_services(
        settings, clock=lambda: clock[0], state=MemoryState(), sms_settings=block
    )


async def sweep_bench(db_url: str, invitations: int) -> None:
    """The invitation sweep on PostgreSQL, sending through Aliyun."""
    fake, url = await start_fake(0.05)
    clock = [DAYTIME]
    services = await build_aliyun(db_url, url, clock)
    try:
        await register_many(services, "OUT", invitations, DAYTIME)
        clock[0] = DAYTIME + timedelta(minutes=3)
        started = time.perf_counter()
        total = 0
        while sent := await services.sms.send_due_invitations(clock[0]):
            total += sent
        elapsed = time.perf_counter() - started
        await seen_once(url, "invitation:", invitations)
        assert total == invitations, f"{total} of {invitations} sent"
        print(
            f"sweep (PostgreSQL): {total} invitations in {elapsed:.2f} s = {total / elapsed:.0f}/s "
            "at 50 ms per request, each reached the fake Aliyun once"
        )
    finally:
        await services.close()
        fake.terminate()
        await fake.wait()


async def push_load(url: str, items: list[dict[str, Any]], pushes: int) -> float:
    """POST `items` in arrays of PUSH with `pushes` in flight; replies per second."""
    batches = [items[i : i + PUSH] for i in range(0, len(items), PUSH)]
    batches.reverse()
    path = f"{url}/sms/aliyun/up?key={KEY}"
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while batches:
                batch = batches.pop()
                async with session.post(path, json=batch) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {await response.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(pushes)))
        return len(items) / (time.perf_counter() - started)


async def until_handled(db_url: str, total: int, started: float) -> float:
    """Seconds from `started` until `total` replies are handled and confirmed."""
    while (done := await handled(db_url)) != (total, total):
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"after 600 s: {done} of {total} handled/confirmed")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def replies_bench(db_url: str, replies: int, clients: int, pushes: int, rounds: int) -> None:
    twilio, twilio_url = await start_fake_twilio(0.0)  # where the confirmations go
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clock = [DAYTIME]
    services = await build(db_url, twilio_url, url, clock)
    await register_many(services, "IN", replies * 2 * rounds, DAYTIME)
    clock[0] = DAYTIME + timedelta(minutes=3)
    while await services.sms.send_due_invitations(clock[0]):
        pass
    await services.close()

    async def both() -> web.Application:  # in a child: the Twilio webhook and Aliyun's pushes
        served: Services = await build(db_url, twilio_url, url, clock, migrate=False)
        app = build_app(served)
        aliyun = provider_for(twilio_url, 8, served.clock)  # sends nothing here
        app.add_routes(routes(aliyun, as_events(served.sms), CallbackGuard(KEY)))

        async def close(_app: web.Application) -> None:
            await aliyun.close()

        app.on_cleanup.append(close)
        settle_gc()
        return app

    server = mp.Process(target=serve_in_child, args=(both, port), daemon=True)
    server.start()
    pid = server.pid or 0
    done = 0  # replies handled so far, as the database counts them

    async def twilio_load(first: int) -> tuple[float, float, float]:
        forms = reply_forms(first, replies)  # signed Twilio replies from those cases' senders
        path = f"/sms/twilio/inbound?key={CALLBACK_KEY}"
        return await timed(load(url, forms, clients, path))

    async def aliyun_load(first: int) -> tuple[float, float, float]:
        items = [
            up_item("５ 态度太差", sequence_id=n, phone=f"139{n:08d}")
            for n in range(first, first + replies)
        ]
        return await timed(push_load(url, items, pushes))

    async def timed(loading: Any) -> tuple[float, float, float]:
        """(answered per second, ms per reply until handled and confirmed, server CPU ms)."""
        nonlocal done
        cpu, started = cpu_s(pid), time.perf_counter()
        ingress = await loading
        done += replies
        seconds = await until_handled(db_url, done, started)
        return ingress, seconds * 1000 / replies, (cpu_s(pid) - cpu) / replies * 1000

    figures: dict[str, list[tuple[float, float, float]]] = {"twilio": [], "aliyun": []}
    try:
        await until_up(url)
        for n in range(rounds):  # alternate which goes first, so neither always gets the warm-up
            loads = [("twilio", twilio_load), ("aliyun", aliyun_load)]
            for k, (name, run) in enumerate(loads if n % 2 == 0 else loads[::-1]):
                figures[name].append(await run((2 * n + k) * replies))
                ingress, ms, cpu_ms = figures[name][-1]
                print(
                    f"replies round {n + 1}, {name}: answered {ingress:,.0f}/s; stored, rated "
                    f"and confirmed {1000 / ms:,.0f}/s = {ms:.2f} ms per reply; server CPU "
                    f"{cpu_ms:.2f} ms per reply",
                    flush=True,
                )
    finally:
        server.terminate()
        server.join()
        twilio.terminate()
        await twilio.wait()
    for name, shape in (
        ("twilio", f"Twilio webhook, {clients} clients, one reply a POST"),
        ("aliyun", f"Aliyun SmsUpReport, {pushes} pushes in flight, {PUSH} replies a push"),
    ):
        ms = statistics.median(f[1] for f in figures[name])
        cpu_ms = statistics.median(f[2] for f in figures[name])
        print(
            f"replies, {shape}, median of {rounds} rounds of {replies}: {ms:.2f} ms per reply "
            f"until stored, rated and confirmed ({1000 / ms:,.0f}/s); server CPU {cpu_ms:.2f} ms "
            "per reply"
        )


async def main(args: argparse.Namespace) -> None:
    logs.configure("WARNING")
    if args.only in (None, "provider"):
        await provider_bench(args)
    if args.only == "provider":
        return
    databases = postgres_database()
    db_url = next(databases)
    try:
        if args.only in (None, "sweep"):
            await sweep_bench(db_url, args.invitations)
        if args.only in (None, "replies"):
            await replies_bench(db_url, args.replies, args.clients, args.pushes, args.reply_rounds)
    finally:
        databases.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("provider", "sweep", "replies"))
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sdk-session", action="store_true")
    parser.add_argument("--invitations", type=int, default=3000)
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--pushes", type=int, default=4)
    parser.add_argument("--reply-rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
