"""SMS benchmark: inbound replies per second and invitations per second, on PostgreSQL.

1. Inbound: signed Twilio replies POSTed to /sms/twilio/inbound of a real pingjia server (the
   signature check and the reply stored in PostgreSQL before the 2xx; handled in the
   server's background: the rating with its ticket and outbox rows, the confirmation sent to
   the fake Twilio), beside a bare aiohttp handler that only reads the form, with the same
   client load in the same run; then the end-to-end rate, until the database shows every
   reply handled and every confirmation sent. Each server runs in a process of its own, as
   `pingjia serve` does; this process is the load. With --rounds N the servers stay up and
   each round runs the bare load, then the webhook load, with replies not sent before (the
   cases for every round are registered and invited up front), then waits until that round's
   replies are handled and confirmed; each round's figures are printed, then their medians
   (the median of the rounds' webhook/bare ratios is the one to quote: figures on a shared
   machine swing from minute to minute, and a slow minute then hits both loads of a round).
2. Outbound: invitations to the fake Twilio answering each request after 50 ms; every message
   must reach it exactly once.

    .venv/bin/python bench/sms_bench.py [--replies 2000] [--invitations 3000] [--clients 32]
        [--only replies|invitations] [--queued] [--rounds 1]

Needs the local PostgreSQL (PINGJIA_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432/test);
a throw-away database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import cpu_s  # noqa: E402

from pingjia import background, logs  # noqa: E402
from pingjia.app import build_app  # noqa: E402
from pingjia.composition import Services, build_services  # noqa: E402
from pingjia.runtime import settle_gc  # noqa: E402
from pingjia.settings import Settings  # noqa: E402
from rating.cases.registration import ServiceRecord  # noqa: E402
from rating.db import engine as db  # noqa: E402
from rating.state import MemoryState  # noqa: E402
from sms.providers.twilio import TwilioSmsSettings  # noqa: E402
from sms.providers.twilio_callbacks import INBOUND_PATH  # noqa: E402
from sms.storage.models import SmsInbound, SmsMessage  # noqa: E402
from tests.fakes.twilio_api import sign  # noqa: E402
from tests.services import free_port, postgres_database  # noqa: E402

SID, TOKEN, SENDER = "AC" + "1" * 32, "bench-token", "+15005550006"
CALLBACK_KEY = "bench-callback-key-0001"
DAYTIME = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Taishan: no quiet hours


async def build(
    url: str,
    twilio_url: str,
    public_url: str,
    clock: list[datetime],
    migrate: bool = True,
    queued: bool = False,
) -> Services:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key="bench",
        data_dir=Path(tempfile.mkdtemp()),
        public_url=public_url,
        sms_provider="twilio",
        sms_callback_key=CALLBACK_KEY,
        log_level="WARNING",
        sms_replies="queued" if queued else "inline",
    )
    block = TwilioSmsSettings(
        _env_file=None, account_sid=SID, auth_token=TOKEN, sender=SENDER, api_url=twilio_url
    )
    return await build_services(
        settings, clock=lambda: clock[0], state=MemoryState(), migrate=migrate, sms_settings=block
    )


async def register_many(services: Services, prefix: str, count: int, now: datetime) -> None:
    async def one(n: int) -> None:
        record = ServiceRecord(f"{prefix}{n:06d}", "complaint", f"139{n:08d}", now)
        await services.ratings.register(record, actor="bench", now=now)

    for start in range(0, count, 50):
        await asyncio.gather(*(one(n) for n in range(start, min(start + 50, count))))


async def load(url: str, forms: list[dict[str, str]], clients: int, path: str) -> float:
    """POST every form with `clients` in flight; return requests per second."""
    queue = list(reversed(forms))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                form = queue.pop()
                headers = {"X-Twilio-Signature": sign(TOKEN, url + path, form)}
                async with session.post(url + path, data=form, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {await response.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return len(forms) / (time.perf_counter() - started)


async def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(text="<Response></Response>", content_type="text/xml")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(INBOUND_PATH, handler)
    app.router.add_get("/healthz", health)
    return app


async def start_fake(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake Twilio in its own process, as Twilio would be: its work is not ours."""
    fake = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.twilio_api",
        str(latency),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert fake.stdout is not None
    return fake, (await fake.stdout.readline()).decode().strip()


def serve_in_child(make: Callable[[], Awaitable[web.Application]], port: int) -> None:
    """Child process: a server on `port`, as `pingjia serve` runs apart from its clients."""

    async def run() -> None:
        logs.configure("WARNING")
        runner = web.AppRunner(await make(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()

    asyncio.run(run())


def start_child(make: Callable[[], Awaitable[web.Application]]) -> tuple[mp.Process, str]:
    port = free_port()
    child = mp.Process(target=serve_in_child, args=(make, port), daemon=True)
    child.start()
    return child, f"http://127.0.0.1:{port}"


async def until_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/healthz"):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"no server on {url}")


async def handled(db_url: str) -> tuple[int, int]:
    """Replies handled, and confirmations sent, as the database says."""
    engine = db.create_engine(db_url, 1)
    try:
        async with engine.connect() as conn:
            done = await conn.scalar(
                select(func.count())
                .select_from(SmsInbound)
                .where(SmsInbound.handled_at.is_not(None))
            )
            sent = await conn.scalar(
                select(func.count())
                .select_from(SmsMessage)
                .where(SmsMessage.kind == "confirmation", SmsMessage.provider_sid.is_not(None))
            )
    finally:
        await engine.dispose()
    return int(done or 0), int(sent or 0)


def schedule_in_child(make: Callable[[], Awaitable[Services]]) -> None:
    """Child process: `pingjia scheduler`'s sweeps (the queued replies' handler)."""

    async def run() -> None:
        logs.configure("WARNING")
        background.build_background(await make()).scheduler.start()
        await asyncio.Event().wait()

    asyncio.run(run())


def reply_forms(first: int, count: int) -> list[dict[str, str]]:
    """Signed-to-be replies from the senders of cases IN{first}.. (each invited, not rated)."""
    return [
        {
            "MessageSid": f"SMIN{n:08d}",
            "AccountSid": SID,
            "From": f"+86139{n:08d}",
            "To": SENDER,
            "Body": "５ 态度太差",
            "NumMedia": "0",
        }
        for n in range(first, first + count)
    ]


async def inbound(
    db_url: str, replies: int, clients: int, queued: bool = False, rounds: int = 1
) -> list[dict[str, float]]:
    """Per round: the bare load, then the webhook load with fresh replies, then the wait until
    the database shows that round's replies handled and confirmed; one dict per round."""
    fake, fake_url = await start_fake(0.0)
    clock = [DAYTIME + timedelta(minutes=3)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    services = await build(db_url, fake_url, url, [DAYTIME])
    await register_many(services, "IN", replies * rounds, DAYTIME)
    while await services.sms.send_due_invitations(clock[0]):
        pass
    await services.close()

    async def pingjia_services() -> Services:  # in a child: its own engine and loop
        return await build(db_url, fake_url, url, clock, migrate=False, queued=queued)

    async def pingjia_app() -> web.Application:
        app = build_app(await pingjia_services())
        settle_gc()  # as `pingjia serve` does once started
        return app

    pingjia = mp.Process(target=serve_in_child, args=(pingjia_app, port), daemon=True)
    pingjia.start()
    children = [pingjia]
    if queued:  # PINGJIA_SMS_REPLIES=queued: a `pingjia scheduler` process handles them
        worker = mp.Process(target=schedule_in_child, args=(pingjia_services,), daemon=True)
        worker.start()
        children.append(worker)
    bare, bare_url = start_child(bare_app)
    results = []
    try:
        await until_up(url)
        for n in range(rounds):
            # Fresh replies each round: new MessageSids, from senders not heard from yet.
            forms = reply_forms(n * replies, replies)
            cpu = cpu_s(bare.pid or 0)
            bare_rate = await load(bare_url, forms, clients, INBOUND_PATH)
            bare_cpu = (cpu_s(bare.pid or 0) - cpu) / replies
            started, cpu = time.perf_counter(), cpu_s(pingjia.pid or 0)
            full = await load(url, forms, clients, f"{INBOUND_PATH}?key={CALLBACK_KEY}")
            webhook_cpu = (cpu_s(pingjia.pid or 0) - cpu) / replies
            # Twilio has its 2xx for every reply; they are handled, and confirmed by our own
            # message, in the server's background: the end-to-end rate waits for all of that.
            # The next round waits too, so its bare load does not share the cores with this
            # round's backlog (which would slow bare, not the webhook).
            total = replies * (n + 1)
            while (done := await handled(db_url)) != (total, total):
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"after 600 s: {done} of {total} handled/confirmed")
                await asyncio.sleep(0.05)
            results.append(
                {
                    "bare": bare_rate,
                    "webhook": full,
                    "ratio": full / bare_rate,
                    "answered": replies / (time.perf_counter() - started),
                    "bare_cpu_ms": bare_cpu * 1000,
                    "webhook_cpu_ms": webhook_cpu * 1000,
                }
            )
    finally:
        for child in (*children, bare):
            child.terminate()
            child.join()
        fake.terminate()
        await fake.wait()
    return results


def report_inbound(args: argparse.Namespace, rounds: list[dict[str, float]]) -> None:
    queued = " (queued)" if args.queued else ""
    shape = f"{args.replies} replies, {args.clients} clients"
    if len(rounds) == 1:  # the line of every earlier run, so their figures stay comparable
        first = rounds[0]
        print(
            f"inbound{queued}: bare aiohttp {first['bare']:.0f}/s, "
            f"webhook (signature + reply stored in PostgreSQL) {first['webhook']:.0f}/s = "
            f"{first['ratio']:.0%} of bare; "
            f"with every confirmation sent {first['answered']:.0f}/s "
            f"({shape}); server CPU per reply "
            f"while the load ran: bare {first['bare_cpu_ms']:.2f} ms, pingjia "
            f"{first['webhook_cpu_ms']:.2f} ms"
        )
        return
    for n, r in enumerate(rounds, 1):
        print(
            f"inbound{queued} round {n}: bare {r['bare']:.0f}/s, webhook {r['webhook']:.0f}/s "
            f"= {r['ratio']:.0%}; with every confirmation sent {r['answered']:.0f}/s; CPU per "
            f"reply: bare {r['bare_cpu_ms']:.2f} ms, pingjia {r['webhook_cpu_ms']:.2f} ms"
        )

    def mid(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    print(
        f"inbound{queued}, median of {len(rounds)} rounds ({shape} each; bare load, then webhook "
        f"load, each round): webhook (signature + reply stored in PostgreSQL) "
        f"{mid('ratio'):.0%} of bare (median of the rounds' ratios); bare aiohttp "
        f"{mid('bare'):.0f}/s, webhook {mid('webhook'):.0f}/s; with every confirmation sent "
        f"{mid('answered'):.0f}/s (per round: from the start of its webhook load until the "
        f"database shows each of its replies handled and confirmed); server CPU per reply "
        f"while the load ran: bare {mid('bare_cpu_ms'):.2f} ms, pingjia "
        f"{mid('webhook_cpu_ms'):.2f} ms"
    )


async def outbound(db_url: str, invitations: int) -> dict[str, float]:
    fake, fake_url = await start_fake(0.05)
    clock = [DAYTIME]
    services = await build(db_url, fake_url, "https://12345.example.gov.cn", clock)
    await register_many(services, "OUT", invitations, DAYTIME)
    clock[0] = DAYTIME + timedelta(minutes=3)
    started = time.perf_counter()
    total = 0
    while sent := await services.sms.send_due_invitations(clock[0]):
        total += sent
    elapsed = time.perf_counter() - started
    async with aiohttp.ClientSession() as session:
        async with session.get(fake_url + "/_requests") as response:
            recipients = [form["To"] for form in await response.json()]
    fake.terminate()
    await fake.wait()
    assert total == invitations == len(recipients) == len(set(recipients)), "a message twice"
    await services.close()
    return {"sent": total, "seconds": elapsed, "per_second": total / elapsed}


async def main(args: argparse.Namespace) -> None:
    logs.configure("WARNING")  # a log line per message would measure the terminal
    databases = postgres_database()
    db_url = next(databases)
    try:
        if args.only in (None, "replies"):
            report_inbound(
                args,
                await inbound(db_url, args.replies, args.clients, args.queued, args.rounds),
            )
        if args.only in (None, "invitations"):
            second = await outbound(db_url, args.invitations)
            print(
                f"outbound: {second['sent']:.0f} invitations in {second['seconds']:.2f} s = "
                f"{second['per_second']:.0f}/s at 50 ms per request, each sent once"
            )
    finally:
        databases.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--invitations", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--queued",
        action="store_true",
        help="PINGJIA_SMS_REPLIES=queued: a scheduler process handles the stored replies",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="replies part: rounds of bare load then webhook load, fresh replies each; "
        "each round's figures, then their medians",
    )
    parser.add_argument(
        "--only", choices=("replies", "invitations"), help="run one part (default: both)"
    )
    arguments = parser.parse_args()
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    asyncio.run(main(arguments))
