"""SMPP benchmark: invitations per second through the fake SMSC answering each PDU after 50 ms.

1. service (default): pingjia's SmsService on PostgreSQL sends due invitations (claim, render,
   send, store) through the SMPP provider, whose session keeps a window of outstanding
   submit_sm (PINGJIA_SMPP_WINDOW); the fake SMSC runs in its own process.
2. provider: the same number of invitation texts straight into SmppProvider.send, 128 at a
   time (SmsService's default concurrency), no database: the session alone.

Every number must reach the fake SMSC exactly once (once per segment of its message).

    .venv/bin/python bench/smpp_bench.py [--invitations 3000] [--window 64] [--delay 0.05]
        [--only service|provider]

The service part needs the local PostgreSQL (PINGJIA_TEST_POSTGRES_URL, default
postgres@127.0.0.1:5432/test); a throw-away database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sms_bench import DAYTIME, build, register_many  # noqa: E402

from pingjia import logs  # noqa: E402
from sms.providers import DeliveryReport, InboundReply, OutboundSms  # noqa: E402
from sms.providers.smpp import SmppProvider, SmppSettings  # noqa: E402
from tests.fakes.smsc import SUBMIT_SM, FakeSmsc  # noqa: E402
from tests.services import postgres_database  # noqa: E402

SOURCE = "1069012345"
TEXT = (
    "【台山12345】您于11月20日反映的诉求C2026112000001已办结，请回复数字评价：1非常满意"
    "2满意3基本满意4不满意5非常不满意，或点击 https://12345.example.gov.cn/r/Ab3dEf6hIj9k"
)


def smsc_child(delay: float, conn: Connection) -> None:
    """The fake SMSC in a process of its own; answers 'report' with each submit's number."""

    async def run() -> None:
        fake = FakeSmsc(delay=delay)
        await fake.start()
        conn.send(fake.port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        conn.send([r.fields["destination_addr"] for r in fake.commands(SUBMIT_SM)])
        await fake.stop()

    asyncio.run(run())


class Quiet:
    """SmsEvents that keep nothing: this bench measures sending."""

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        return True

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        return None


async def start_provider(port: int, window: int) -> SmppProvider:
    settings = SmppSettings(
        _env_file=None,  # type: ignore[call-arg]
        host="127.0.0.1",
        port=port,
        system_id="pingjia",
        password="pw12345",
        source_addr=SOURCE,
        window=window,
    )
    provider = SmppProvider(settings)
    await provider.start(Quiet())
    await asyncio.wait_for(provider.session.bound.wait(), 10)
    return provider


async def through_service(db_url: str, port: int, invitations: int, window: int) -> float:
    clock = [DAYTIME]
    services = await build(db_url, "http://127.0.0.1:9", "https://12345.example.gov.cn", clock)
    await services.sms.provider.close()  # the Twilio provider build() made: not used
    services.sms.provider = await start_provider(port, window)
    await register_many(services, "OUT", invitations, DAYTIME)
    clock[0] = DAYTIME + timedelta(minutes=3)
    started = time.perf_counter()
    total = 0
    while sent := await services.sms.send_due_invitations(clock[0]):
        total += sent
    elapsed = time.perf_counter() - started
    await services.close()
    assert total == invitations, f"{total} of {invitations} sent"
    return elapsed


async def through_provider(port: int, invitations: int, window: int) -> float:
    provider = await start_provider(port, window)
    slots = asyncio.Semaphore(128)

    async def one(n: int) -> None:
        async with slots:
            await provider.send(OutboundSms(f"139{n:08d}", "invitation", {}, TEXT, f"b:{n}"))

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(invitations)))
    elapsed = time.perf_counter() - started
    await provider.close()
    return elapsed


async def run(args: argparse.Namespace, how: str, db_url: str | None) -> None:
    parent, child = mp.Pipe()
    smsc = mp.Process(target=smsc_child, args=(args.delay, child), daemon=True)
    smsc.start()
    port = parent.recv()
    if how == "service":
        assert db_url is not None
        elapsed = await through_service(db_url, port, args.invitations, args.window)
    else:
        elapsed = await through_provider(port, args.invitations, args.window)
    parent.send("report")
    numbers = Counter(parent.recv())
    smsc.join(5)
    per_number = set(numbers.values())
    assert len(numbers) == args.invitations and len(per_number) == 1, "a message lost or twice"
    segments = per_number.pop()
    print(
        f"{how}: {args.invitations} invitations ({segments} segment(s) each, "
        f"{sum(numbers.values())} submit_sm) in {elapsed:.2f} s = "
        f"{args.invitations / elapsed:.0f}/s, window {args.window}, fake SMSC answering after "
        f"{args.delay * 1000:.0f} ms; each number reached exactly once"
    )


async def main(args: argparse.Namespace) -> None:
    logs.configure("WARNING")
    if args.only in (None, "provider"):
        await run(args, "provider", None)
    if args.only in (None, "service"):
        databases = postgres_database()
        try:
            await run(args, "service", next(databases))
        finally:
            databases.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invitations", type=int, default=3000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--only", choices=("service", "provider"))
    asyncio.run(main(parser.parse_args()))
