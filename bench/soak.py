"""Soak: mixed traffic for N minutes on two `pingjia serve` nodes, one PostgreSQL, one Redis.

Two nodes as tests/faults/test_two_nodes.py starts them (same environment: a fake central
store, a fake 12345 system and a fake Twilio, every sweep on both nodes every
`--sweep-every` seconds), against the local PostgreSQL (a database of its own, created and
dropped) and Redis (`--redis-url`, db 13 by default, flushed before and after). Paced traffic,
alternating between the nodes, each kind at its own steady rate:

- calls: a case registered through the API, then a simulated Asterisk call (asterisk_sim)
  into the `rating` flow; 40 % 不满意 with a reason (a ticket), the rest 满意;
- SMS replies: a case registered, then a signed Twilio reply webhook from its citizen
  (`５ 态度太差`, a ticket, or `1`);
- invitations: cases nobody rates: the SMS sweep invites each two minutes later;
- overdue cases (completed 8 days ago): the default-rating sweep rates them;
- ticket work: agents and an agency take every ticket through 转办, 核实, 整改, 办结 via the API;
- the sweeps themselves: outbox posts to the central store, transfers to 12345, SMS.

Every `--interval` seconds a row: per node RSS (MiB), open fds, PostgreSQL sessions, Redis
clients; per kind n/p50/p99 (ms) and errors; the backlog (outbox waiting, tickets not yet
transferred, open tickets). At the end the load stops, the work settles, the counts are
checked in the database and at the fakes (every case rated once, every ticket once, nothing
doubled), and the verdict is printed (bench/soak_stats.py says how it judges). All of it is
written to `--json`.

    .venv/bin/python bench/soak.py --minutes 30 --json soak.json
    .venv/bin/python bench/soak.py --minutes 0.3 --interval 5      # a smoke run (tests/)

Needs the local PostgreSQL (PINGJIA_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432/test)
and Redis. Exit status 0 when every count check passes and the verdict is ok, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import cpu_s  # noqa: E402
from soak_stats import Meter, judge, node_sample  # noqa: E402

from asterisk_sim.caller import Key, ScriptedCaller  # noqa: E402
from asterisk_sim.simulator import Simulator  # noqa: E402
from rating.db import engine as db  # noqa: E402
from sms.providers.twilio_callbacks import INBOUND_PATH  # noqa: E402
from tests.fakes.central_store import FakeCentralStore  # noqa: E402
from tests.fakes.ticket_system import FakeTicketSystem  # noqa: E402
from tests.fakes.twilio_api import FakeTwilio, sign  # noqa: E402
from tests.faults.ledger import read_ledger  # noqa: E402
from tests.faults.test_two_nodes import SID, SOUNDS, TOKEN, Fakes, node_env  # noqa: E402
from tests.services import free_port, postgres_database  # noqa: E402

AGENCY = "台山市市场监督管理局"
CALLBACK_KEY = "two-nodes-callback-key"  # node_env's
JUDGE_FROM_MIN = 10  # a shorter run is a smoke test: its counts are checked, not its trends
IN_FLIGHT_CAP = 200  # per kind: beyond it a beat is shed (and counted as an error)
# Ticket steps in the order that empties the queue: the last step first.
STEPS = [
    ("rectified", "close", "agent", {"note": "办结"}),
    ("rectifying", "rectify", "agency", {"feedback": "已整改并回复市民"}),
    ("confirmed", "start-rectify", "agency", {}),
    ("dispatched", "confirm", "agency", {}),
    ("new", "dispatch", "agent", {}),
]


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    agi_port: int
    http_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def alive(self) -> bool:
        return self.process.poll() is None


def start_node(name: str, env: dict[str, str], folder: Path, trace: bool = False) -> Node:
    agi_port, http_port = free_port(), free_port()
    log = folder / f"{name}.log"
    command = [sys.executable, "-m", "pingjia.cli", "serve"]
    if trace:  # tracemalloc on; SIGUSR1 writes a snapshot (bench/soak_node.py)
        command = [sys.executable, str(ROOT / "bench" / "soak_node.py"), str(folder / name)]
    process = subprocess.Popen(
        command,
        env={
            **env,
            "PINGJIA_AGI_PORT": str(agi_port),
            "PINGJIA_HTTP_PORT": str(http_port),
            "PINGJIA_PUBLIC_URL": f"http://127.0.0.1:{http_port}",  # Twilio signs this URL
        },
        cwd=folder,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Node(name, process, agi_port, http_port, log)


async def wait_up(node: Node, session: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not node.alive():
            raise RuntimeError(f"node {node.name} exited: {node.log.read_text()[-2000:]}")
        try:
            async with session.get(node.url + "/healthz") as response:
                if response.status == 200:
                    _, writer = await asyncio.open_connection("127.0.0.1", node.agi_port)
                    writer.close()
                    return
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"node {node.name} did not come up: {node.log.read_text()[-2000:]}")


def make_token(env: dict[str, str], role: str, *extra: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pingjia.cli", "token", "create", "--role", role, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip()


@dataclass
class Load:
    """The traffic generators and what they expect the system to end up with."""

    nodes: list[Node]
    http: aiohttp.ClientSession
    agent: str
    agency: str
    meter: Meter = field(default_factory=Meter)
    expect: Counter[str] = field(default_factory=Counter)
    sms_phones: list[str] = field(default_factory=list)
    invited: list[tuple[str, float]] = field(default_factory=list)  # phone, registered at
    serial: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def node(self, n: int) -> Node:
        return self.nodes[n % len(self.nodes)]

    def next_case(self, prefix: str) -> tuple[int, str, str]:
        self.serial += 1
        return self.serial, f"{prefix}{self.serial:07d}", f"139{self.serial:08d}"

    async def timed(self, kind: str, work: Callable[[], Awaitable[str | None]]) -> bool:
        """Run `work` (returns None when all went well, else what went wrong); count it."""
        started = time.perf_counter()
        try:
            problem = await work()
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            self.meter.ok(kind, (time.perf_counter() - started) * 1000)
            return True
        self.meter.error(kind, problem)
        return False

    async def request(
        self, method: str, url: str, token: str, body: dict[str, Any] | None, want: int
    ) -> str | None:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, url, json=body, headers=headers) as response:
            if response.status != want:
                return f"{method} {url} -> {response.status}: {(await response.text())[:200]}"
            await response.read()
        return None

    async def register(self, n: int, case_no: str, phone: str, days_ago: float = 0) -> bool:
        completed = datetime.now(UTC) - timedelta(days=days_ago, minutes=1)
        body = {
            "case_no": case_no,
            "kind": "complaint",
            "phone": phone,
            "completed_at": completed.isoformat(),
            "agency": AGENCY,
        }
        url = self.node(n).url + "/api/v1/services"
        return await self.timed(
            "register", lambda: self.request("POST", url, self.agent, body, 201)
        )

    async def call(self, n: int) -> None:
        serial, case_no, phone = self.next_case("C")
        if not await self.register(n, case_no, phone):
            return
        bad = serial % 5 < 2
        keys = [Key("4"), Key("3"), Key("#")] if bad else [Key("1")]
        node = self.node(n + 1)  # registered on one node, called on the other

        async def work() -> str | None:
            result = await Simulator(ScriptedCaller(keys), SOUNDS).call(
                "127.0.0.1", node.agi_port, f"rating?case={case_no}"
            )
            # HANGUP ends the flow; the node may then ask which prompts this host lacks.
            if "HANGUP" not in result.commands:
                return f"{case_no} on {node.name}: no HANGUP, ended with {result.commands[-2:]}"
            return None

        if await self.timed("call", work):
            self.expect["adopted"] += 1
            self.expect["tickets"] += bad

    async def sms(self, n: int) -> None:
        serial, case_no, phone = self.next_case("M")
        if not await self.register(n, case_no, phone):
            return
        bad = serial % 2 == 0
        node = self.node(n + 1)
        form = {
            "MessageSid": f"SMSOAK{serial:010d}",
            "AccountSid": SID,
            "From": f"+86{phone}",
            "To": "+15005550006",
            "Body": "５ 态度太差" if bad else "1",
            "NumMedia": "0",
        }
        url = f"{node.url}{INBOUND_PATH}?key={CALLBACK_KEY}"

        async def work() -> str | None:
            headers = {"X-Twilio-Signature": sign(TOKEN, url, form)}
            async with self.http.post(url, data=form, headers=headers) as response:
                if response.status != 200:
                    return f"{case_no}: webhook {response.status}: {await response.text()}"
                await response.read()
            return None

        if await self.timed("sms", work):
            self.expect["adopted"] += 1
            self.expect["tickets"] += bad
            self.sms_phones.append(phone)

    async def invite(self, n: int) -> None:
        _, case_no, phone = self.next_case("I")
        if await self.register(n, case_no, phone):
            self.invited.append((phone, time.monotonic()))

    async def overdue(self, n: int) -> None:
        _, case_no, phone = self.next_case("D")
        if await self.register(n, case_no, phone, days_ago=8):
            self.expect["adopted"] += 1  # by the default-rating sweep

    async def paced(
        self,
        kind: str,
        per_s: float,
        action: Callable[[int], Coroutine[Any, Any, None]],
        until: float,
    ) -> None:
        """`action(n)` every 1/per_s seconds until `until`, each in a task of its own (a slow
        one does not delay the next beat: latency shows, the rate holds)."""
        if per_s <= 0:
            return
        step, beat, n = 1 / per_s, time.monotonic(), 0
        while (beat := beat + step) < until:
            await asyncio.sleep(max(0.0, beat - time.monotonic()))
            if self.in_flight[kind] >= IN_FLIGHT_CAP:
                self.meter.error(kind, "shed: too many in flight")
                continue
            self.in_flight[kind] += 1
            task: asyncio.Task[None] = asyncio.create_task(action(n))
            task.add_done_callback(functools.partial(self._done, kind=kind))
            self.tasks.add(task)
            n += 1

    def _done(self, task: asyncio.Task[None], kind: str) -> None:
        self.in_flight[kind] -= 1
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.meter.error(kind, repr(task.exception()))

    async def ticket_pass(self, turn: int) -> int:
        """One pass over the queues, last step first; how many steps were taken."""
        acted = 0
        tokens = {"agent": self.agent, "agency": self.agency}
        for status, path, role, body in STEPS:
            node = self.node(turn + acted)
            url = f"{node.url}/api/v1/tickets?status={status}&limit=50"
            found: list[str] = []

            async def listing(url: str = url, found: list[str] = found) -> str | None:
                headers = {"Authorization": f"Bearer {self.agent}"}
                async with self.http.get(url, headers=headers) as response:
                    if response.status != 200:
                        return f"{url} -> {response.status}"
                    found.extend(t["ticket_no"] for t in (await response.json())["items"])
                return None

            if not await self.timed("ticket_list", listing):
                continue
            for ticket_no in found:
                target = f"{self.node(turn + acted).url}/api/v1/tickets/{ticket_no}/{path}"
                await self.timed(
                    "ticket",
                    lambda t=target, b=body, r=role: self.request("POST", t, tokens[r], b, 200),
                )
                acted += 1
        return acted

    async def ticket_work(self, until: float) -> None:
        turn = 0
        while time.monotonic() < until:
            began = time.monotonic()
            turn += await self.ticket_pass(turn) + 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))


async def client_ports(
    pg: asyncpg.Connection, database: str, rc: redis.Redis
) -> tuple[list[int], list[int]]:
    rows = await pg.fetch(
        "SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND client_port > 0",
        database,
    )
    clients = await rc.client_list()
    return (
        [int(r["client_port"]) for r in rows],
        [int(c["addr"].rsplit(":", 1)[1]) for c in clients],
    )


async def backlog(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM outbox"
                    " WHERE sent_at IS NULL AND dead_at IS NULL),"
                    " (SELECT count(*) FROM tickets WHERE transferred_at IS NULL),"
                    " (SELECT count(*) FROM tickets WHERE status <> 'closed')"
                )
            )
        ).one()
    return {"outbox_waiting": row[0], "untransferred": row[1], "open_tickets": row[2]}


def print_row(row: dict[str, Any]) -> None:
    nodes = "  ".join(
        f"{name}: {v['rss_mib']:.1f}MiB fd{v['fds']} pg{v['pg']} r{v['redis']} "
        f"cpu{v['cpu_pct']:.0f}%"
        for name, v in row["nodes"].items()
    )
    lat = "  ".join(
        f"{k} {v['n']}x {v['p50']:.0f}/{v['p99']:.0f}" for k, v in row["latency"].items()
    )
    errors = sum(row["errors"].values())
    b = row["backlog"]
    print(
        f"{row['t_min']:6.2f} min load {row['load1']:.1f} | {nodes} | {lat} | err {errors} | "
        f"outbox {b['outbox_waiting']} untransferred {b['untransferred']} "
        f"open {b['open_tickets']}",
        flush=True,
    )


async def sampler(
    load: Load,
    pg: asyncpg.Connection,
    database: str,
    rc: redis.Redis,
    sessions: async_sessionmaker[AsyncSession],
    began: float,
    interval: float,
    until: float,
    rows: list[dict[str, Any]],
    trace: bool = False,
) -> None:
    beat = began
    cpu = {n.name: cpu_s(n.process.pid) for n in load.nodes}
    while (beat := beat + interval) <= until + 0.01:
        await asyncio.sleep(max(0.0, beat - time.monotonic()))
        pg_ports, redis_ports = await client_ports(pg, database, rc)
        latency, errors = load.meter.cut()
        nodes = {n.name: node_sample(n.process.pid, pg_ports, redis_ports) for n in load.nodes}
        for n in load.nodes:  # the node's CPU over the interval, % of one core
            used, cpu[n.name] = cpu_s(n.process.pid) - cpu[n.name], cpu_s(n.process.pid)
            nodes[n.name]["cpu_pct"] = round(used / interval * 100, 1)
        row = {
            "t_min": round((time.monotonic() - began) / 60, 2),
            "load1": os.getloadavg()[0],  # the machine's (shared: other runs count too)
            "nodes": nodes,
            "latency": latency,
            "errors": errors,
            "backlog": await backlog(sessions),
        }
        rows.append(row)
        print_row(row)
        if trace:
            for node in load.nodes:
                node.process.send_signal(signal.SIGUSR1)


async def settle(
    load: Load, sessions: async_sessionmaker[AsyncSession], fakes: Fakes, within: float
) -> float:
    """Keep working the tickets until the sweeps and the agents have caught up."""
    started = time.monotonic()
    turn = 0
    while time.monotonic() - started < within:
        turn += await load.ticket_pass(turn) + 1
        ledger = await read_ledger(sessions)
        b = await backlog(sessions)
        if (
            ledger.adopted >= load.expect["adopted"]
            and ledger.tickets >= load.expect["tickets"]
            and b == {"outbox_waiting": 0, "untransferred": 0, "open_tickets": 0}
            and len(fakes.store.stored) >= ledger.outbox_sent
        ):
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return -1.0


async def checks(
    load: Load, sessions: async_sessionmaker[AsyncSession], fakes: Fakes, load_end: float
) -> dict[str, Any]:
    ledger = await read_ledger(sessions)
    async with sessions() as session:
        doubled_steps = (
            await session.execute(
                text(
                    "SELECT count(*) FROM (SELECT ticket_id, action FROM ticket_events "
                    "GROUP BY ticket_id, action HAVING count(*) > 1) AS d"
                )
            )
        ).scalar_one()
        closed = (
            await session.execute(text("SELECT count(*) FROM tickets WHERE status = 'closed'"))
        ).scalar_one()
    store_ratings = Counter(
        str(v["payload"].get("case_no"))
        for v in fakes.store.stored.values()
        if v["path"] == "/ratings" and v["method"] == "POST"
    )
    transferred = Counter(r.json["ticket_no"] for r in fakes.tickets.to("/tickets"))
    sent = Counter((r.form["To"], r.form["Body"]) for r in fakes.twilio.requests)
    to = Counter(r.form["To"] for r in fakes.twilio.requests)
    due_invites = [p for p, at in load.invited if load_end - at > 180]  # 2 min grace + sweeps
    counts = {
        "expected_adopted": load.expect["adopted"],
        "adopted": ledger.adopted,
        "evaluations_adopted_twice": ledger.evaluations_adopted_twice,
        "expected_tickets": load.expect["tickets"],
        "tickets": ledger.tickets,
        "cases_ticketed_twice": ledger.cases_ticketed_twice,
        "tickets_closed": closed,
        "ticket_steps_doubled": doubled_steps,
        "outbox": ledger.outbox,
        "outbox_sent": ledger.outbox_sent,
        "outbox_waiting": ledger.outbox_waiting,
        "outbox_dead": ledger.outbox_dead,
        "store_items": len(fakes.store.stored),
        "store_requests": len(fakes.store.requests),
        "store_ratings_posted": sum(store_ratings.values()),
        "store_ratings_doubled": sum(1 for n in store_ratings.values() if n > 1),
        "tickets_at_12345": len(transferred),
        "transfer_requests": sum(transferred.values()),
        "sms_sent": len(fakes.twilio.requests),
        "sms_doubled": sum(1 for n in sent.values() if n > 1),
        "sms_replies": len(load.sms_phones),
        "sms_replies_answered_once": sum(1 for p in load.sms_phones if to[f"+86{p}"] == 1),
        "invitations_due": len(due_invites),
        "invitations_sent_once": sum(1 for p in due_invites if to[f"+86{p}"] == 1),
        "errors": dict(load.meter.errors),
        "done": dict(load.meter.done),
    }
    passed = {
        "no errors": not load.meter.errors,
        "every rated case rated once": ledger.adopted == load.expect["adopted"]
        and ledger.evaluations_adopted_twice == 0,
        "every ticket once": ledger.tickets == load.expect["tickets"]
        and ledger.cases_ticketed_twice == 0,
        "every ticket closed, each step once": closed == ledger.tickets and doubled_steps == 0,
        "every outbox item sent, none dead": ledger.outbox_waiting == 0
        and ledger.outbox_dead == 0
        and ledger.outbox_sent == sum(ledger.outbox.values()),
        "central store: each item once": len(fakes.store.stored) == ledger.outbox_sent
        and sum(store_ratings.values()) == ledger.adopted
        and counts["store_ratings_doubled"] == 0,
        "12345: each ticket transferred": len(transferred) == ledger.tickets,
        "SMS: nothing sent twice": counts["sms_doubled"] == 0,
        "SMS: each reply answered once": counts["sms_replies_answered_once"]
        == len(load.sms_phones),
        "SMS: each due invitation sent once": counts["invitations_sent_once"] == len(due_invites),
    }
    return {"counts": counts, "checks": passed}


async def soak(args: argparse.Namespace, db_url: str, folder: Path) -> dict[str, Any]:
    await db.upgrade(db_url)
    fakes = Fakes(FakeCentralStore(), FakeTicketSystem(), FakeTwilio())
    for fake in (fakes.store, fakes.tickets, fakes.twilio):
        await fake.start()
    rc = redis.from_url(args.redis_url)
    await rc.flushdb()
    url = make_url(db_url)
    database = str(url.database)
    pg = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    engine = db.create_engine(db_url, pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    nodes: list[Node] = []
    try:
        env = node_env(db_url, args.redis_url, fakes, folder / "data")
        env["PINGJIA_SWEEP_EVERY_S"] = str(args.sweep_every)
        env["PINGJIA_LOG_LEVEL"] = args.log_level
        env["PINGJIA_DATA_DIR"] = str(folder / "data")
        agent = make_token(env, "agent", "--name", "soak-agent")
        agency = make_token(env, "agency", "--name", "soak-agency", "--agency", AGENCY, "--force")
        for name in ("a", "b"):
            nodes.append(start_node(name, env, folder, args.trace_memory))
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(*(wait_up(n, http) for n in nodes))
            load = Load(nodes, http, agent, agency)
            began = time.monotonic()
            until = began + args.minutes * 60
            rows: list[dict[str, Any]] = []
            print(f"soak: {args.minutes} min, nodes {[n.url for n in nodes]}", flush=True)
            await asyncio.gather(
                load.paced("call", args.calls, load.call, until),
                load.paced("sms", args.sms, load.sms, until),
                load.paced("invite", args.invites / 60, load.invite, until),
                load.paced("overdue", args.overdue / 60, load.overdue, until),
                load.ticket_work(until),
                sampler(
                    load,
                    pg,
                    database,
                    rc,
                    sessions,
                    began,
                    args.interval,
                    until,
                    rows,
                    args.trace_memory,
                ),
            )
            load_end = time.monotonic()
            if load.tasks:
                await asyncio.wait(list(load.tasks), timeout=120)
            settled_in = await settle(load, sessions, fakes, args.settle)
            result = await checks(load, sessions, fakes, load_end)
            dead = [n.name for n in nodes if not n.alive()]
        return {
            "command": " ".join(sys.argv),
            "started": datetime.now(UTC).isoformat(),
            "settings": vars(args),
            "rows": rows,
            "settled_in_s": round(settled_in, 1),
            "nodes_died": dead,
            "first_errors": load.meter.first_errors,
            **result,
            "memory_trace": trace_report(folder, [n.name for n in nodes], len(rows))
            if args.trace_memory
            else {},
            "verdict": {**judge(rows, args.minutes), "judged": args.minutes >= JUDGE_FROM_MIN},
        }
    finally:
        for node in nodes:
            if node.alive():
                node.process.terminate()
                try:
                    node.process.wait(20)
                except subprocess.TimeoutExpired:
                    node.process.kill()
        await engine.dispose()
        await pg.close()
        await rc.flushdb()
        await rc.aclose()
        for fake in (fakes.store, fakes.tickets, fakes.twilio):
            await fake.stop()


def trace_report(folder: Path, names: list[str], samples: int) -> dict[str, list[str]]:
    """Per node: the 15 call sites whose allocations grew most between the snapshot a third
    into the run (after the warm-up) and the last one."""
    grown = {}
    first = max(2, samples // 3)  # the first signal only started the tracing
    for name in names:
        before = folder / f"{name}.{first}.snap"
        after = folder / f"{name}.{samples}.snap"
        if not (before.exists() and after.exists()):
            grown[name] = [f"no snapshots {before.name}, {after.name}"]
            continue
        diff = tracemalloc.Snapshot.load(str(after)).compare_to(
            tracemalloc.Snapshot.load(str(before)), "traceback"
        )
        grown[name] = [
            f"{d.size_diff / 1024:+.0f} KiB {d.count_diff:+d} blocks: "
            + " <- ".join(
                f"{'/'.join(f.filename.rsplit('/', 2)[-2:])}:{f.lineno}"
                for f in list(reversed(d.traceback))[:5]  # the most recent frames first
            )
            for d in diff[:15]
        ]
    return grown


def report(out: dict[str, Any]) -> bool:
    for name, lines in out.get("memory_trace", {}).items():
        print(f"memory grown on {name}:", *lines, sep="\n  ")
    print("\ncounts:", json.dumps(out["counts"], ensure_ascii=False))
    for name, ok in out["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if out["first_errors"]:
        print("first errors:", *out["first_errors"], sep="\n  ")
    verdict = out["verdict"]
    print("verdict:", json.dumps(verdict, ensure_ascii=False, indent=1))
    if not verdict["judged"]:
        print(f"verdict not judged: runs shorter than {JUDGE_FROM_MIN} minutes only check counts")
    counted = all(out["checks"].values()) and not out["nodes_died"]
    return counted and (bool(verdict.get("ok")) or not verdict["judged"])


KINDS = ("call", "register", "sms", "ticket", "ticket_list")


def markdown(out: dict[str, Any], every: int) -> str:
    """The rows of a run's JSON, every `every`-th one, as the Markdown table of bench/README.md."""
    names = list(out["rows"][0]["nodes"])
    head = ["min", "load avg", *(f"{n}: RSS MiB / fds / pg / redis / CPU %" for n in names)]
    head += [f"{k} p50/p99 ms" for k in KINDS] + ["errors", "outbox waiting / open tickets"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    rows = out["rows"]
    picked = [r for i, r in enumerate(rows, 1) if i % every == 0 or i in (1, len(rows))]
    for r in picked:
        cells = [
            f"{r['t_min']:.1f}".rstrip("0").rstrip("."),
            f"{r['load1']:.1f}" if "load1" in r else "-",
        ]
        for n in names:
            v = r["nodes"][n]
            cpu = f" / {v['cpu_pct']:.0f}" if "cpu_pct" in v else ""
            cells.append(f"{v['rss_mib']:.1f} / {v['fds']} / {v['pg']} / {v['redis']}{cpu}")
        for k in KINDS:
            lat = r["latency"].get(k)
            cells.append(f"{lat['p50']:.0f} / {lat['p99']:.0f}" if lat else "-")
        cells.append(str(sum(r["errors"].values())))
        cells.append(f"{r['backlog']['outbox_waiting']} / {r['backlog']['open_tickets']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text()), args.every))
        return 0
    databases = postgres_database()
    db_url = next(databases)
    try:
        with tempfile.TemporaryDirectory(prefix="pingjia-soak-") as folder:
            out = asyncio.run(soak(args, db_url, Path(folder)))
            if args.keep_logs:
                for name in ("a", "b"):
                    log = Path(folder) / f"{name}.log"
                    shutil.move(log, Path(args.keep_logs) / f"soak-{name}.log")
    finally:
        databases.close()
    Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1))
    return 0 if report(out) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="load duration")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per table row")
    parser.add_argument("--calls", type=float, default=2.0, help="calls per second")
    parser.add_argument("--sms", type=float, default=0.5, help="SMS replies per second")
    parser.add_argument("--invites", type=float, default=6.0, help="unrated cases per minute")
    parser.add_argument("--overdue", type=float, default=6.0, help="overdue cases per minute")
    parser.add_argument("--sweep-every", type=float, default=1.0, help="PINGJIA_SWEEP_EVERY_S")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to catch up after")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("PINGJIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="flushed before and after (default: PINGJIA_TEST_REDIS_URL, else db 13)",
    )
    parser.add_argument("--log-level", default="WARNING", help="the nodes' PINGJIA_LOG_LEVEL")
    parser.add_argument("--json", default="soak.json", help="where the rows and verdict go")
    parser.add_argument("--keep-logs", help="a folder to keep the nodes' logs in")
    parser.add_argument("--markdown", help="print a run's JSON as a Markdown table; no run")
    parser.add_argument("--every", type=int, default=5, help="with --markdown: every N-th row")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="tracemalloc in the nodes, a snapshot each interval; print what grew (slow)",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.interval <= 0:
        parser.error("--minutes and --interval must be positive")
    return args


if __name__ == "__main__":
    sys.exit(main(parse()))
