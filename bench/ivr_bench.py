"""FastAGI benchmark: N concurrent simulated calls through the full rating flow, against the
real server and database (SQLite, PostgreSQL), beside a bare panoramisk handler that sends the
same commands and stores nothing. Each server runs in a child process; this process is the
load (asterisk_sim.simulator, the same simulator the tests use).

    .venv/bin/python bench/ivr_bench.py --calls 1000 [--backends sqlite,postgres,bare]
        [--rounds 3]

A backend named `sqlite+writer` or `postgres+writer` is an experiment: the same server with its
rating batches written by a second process (bench/remote_writer.py), to measure what moving the
writes off the AGI process's core would give.

Reports calls/s (to the last session closed), p50/p99 server turnaround per AGI command (our
reply written -> the server's next command read, seen from the simulated Asterisk), memory per
concurrent call (server RSS with N calls held open at their first prompt, minus RSS before,
over N), the server's CPU per call, and calls/s counted to the last HANGUP sent: a session
closes only once its rating is written, so the difference is the writes left at the burst's end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procstat import cpu_s, rss_kib
from remote_writer import RemoteWrites, serve_writer

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import CallResult, Simulator
from asterisk_sim.softphone import prompt_sounds
from prompts.catalog import AUDIO

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
KEYS = [Key("4", 0), Key("1", 0), Key("#", 0)]  # barge in: 不满意, reason 1, no message
BARE_COMMANDS = [
    "STREAM FILE pingjia/cmn/rating_greeting 12345",
    "STREAM FILE pingjia/cmn/reasons_taishan_4 12345679",
    "STREAM FILE pingjia/cmn/rating_voice_offer #",
    'STREAM FILE pingjia/cmn/rating_thanks ""',
    "HANGUP",
]


def _settings(url: str, data: str) -> object:
    from pingjia.settings import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        data_dir=Path(data),
        secret_key="bench",
        log_level="WARNING",
    )


def run_pingjia(
    url: str,
    data: str,
    port: mp.Value,  # type: ignore[valid-type]
    slots: int,
    level: str,
    writer_path: str | None = None,
) -> None:
    """Child process: pingjia's FastAGI server over the real services; with `writer_path`, its
    rating batches go to the writer process listening there (bench/remote_writer.py)."""
    from pingjia import logs
    from pingjia.composition import build_services
    from pingjia.ivr_server import IvrServer, ivr_context
    from pingjia.runtime import settle_gc

    # Log lines go to /dev/null: what they cost is measured, not the terminal's speed.
    sink = open(os.devnull, "w")  # open for the process's life

    async def main() -> None:
        logs.configure(level, stream=sink)
        services = await build_services(_settings(url, data), migrate=False)  # type: ignore[arg-type]
        if writer_path is not None:
            remote = RemoteWrites()
            await remote.connect(writer_path)
            services.ratings.writer._write = remote.write
        # The context and server `pingjia serve` builds (metrics included): database work
        # admitted up to the pool's size.
        context = ivr_context(services)
        context.db_slots = slots or context.db_slots
        server = IvrServer(context, services)
        await server.start("127.0.0.1", 0)
        settle_gc()  # as `pingjia serve` does once started
        port.value = server.port  # type: ignore[attr-defined]
        await asyncio.Event().wait()

    asyncio.run(main())


def run_bare(port: mp.Value) -> None:  # type: ignore[valid-type]
    """Child process: panoramisk 1.4 as it comes, sending the same commands."""
    from panoramisk.fast_agi import Application  # type: ignore[import-untyped]

    async def rating(request: object) -> None:
        for line in BARE_COMMANDS:
            await request.send_command(line)  # type: ignore[attr-defined]

    async def main() -> None:
        app = Application(loop=asyncio.get_running_loop())
        app.add_route("rating", rating)
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=2048)
        port.value = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        await asyncio.Event().wait()

    asyncio.run(main())


async def prepare(url: str, data: str, calls: int, tag: str) -> None:
    """Create the schema and register the cases the calls will rate."""
    from pingjia.composition import build_services
    from rating.cases.registration import ServiceRecord

    services = await build_services(_settings(url, data))  # type: ignore[arg-type]
    done = datetime(2026, 11, 20, 9, tzinfo=UTC)
    for i in range(calls * 2):
        record = ServiceRecord(f"B{tag}-{i}", "complaint", None, done)
        await services.ratings.register(record, actor="bench", now=done)
    await services.close()


THANKS_MS = 0  # --thanks-ms: how long the simulated Asterisk plays the thank-you
PROMPT_MS = 0  # --prompt-ms: how long every other prompt plays before the caller's key
RAMP_S = 0.0  # --ramp-s: calls start spread over this many seconds (0: all at once)


async def play_thanks(line: str) -> None:
    """Asterisk answers STREAM FILE only once the prompt has played (5.1 s for rating_thanks)
    or a key barged in; the simulator's time is virtual, so hold the thank-you's reply for
    --thanks-ms and every other prompt's for --prompt-ms of real time."""
    if not line.startswith("STREAM FILE"):
        return
    held = THANKS_MS if "rating_thanks" in line else PROMPT_MS
    if held:
        await asyncio.sleep(held / 1000)


async def load(
    port: int,
    calls: int,
    first: int,
    hold: Callable[[str], object] | None,
    bare: bool,
    hangups: list[float] | None = None,
) -> list[CallResult]:
    """Run the calls; `hangups` gets the time each call's HANGUP command arrived."""
    sounds = prompt_sounds(AUDIO)

    def heard(direction: str, line: str) -> None:
        if hangups is not None and direction == "<" and line == "HANGUP":
            hangups.append(time.perf_counter())

    async def one(i: int) -> CallResult:
        if RAMP_S and hold is None:  # callers arrive over the ramp, not in one instant
            await asyncio.sleep(RAMP_S * i / calls)
        before = hold or play_thanks
        sim = Simulator(ScriptedCaller(KEYS), sounds, before_reply=before, on_line=heard)  # type: ignore[arg-type]
        # panoramisk cannot route a query string (a hazard we wrap): the bare run goes without.
        script = "rating" if bare else f"rating?case=B{TAG}-{first + i}"
        return await sim.call("127.0.0.1", port, script)

    return await asyncio.gather(*(one(i) for i in range(calls)))


TAG = uuid.uuid4().hex[:6]


async def measure(
    name: str, pid: int, port: int, calls: int, writer: int | None = None
) -> dict[str, float]:
    """One backend's run; `writer`: the pid of its writer process, whose CPU is counted too."""
    bare = name == "bare"
    await load(port, 20, 10**6, None, bare)  # warm up (no such cases: registered from the call)
    baseline = rss_kib(pid)
    arrived = 0
    release = asyncio.Event()

    async def hold(_line: str) -> None:
        nonlocal arrived
        if not release.is_set():
            arrived += 1
            if arrived == calls:
                release.set()
            await release.wait()

    # Memory first, on a fresh process: N calls held open at their first prompt.
    holding = asyncio.create_task(load(port, calls, 0, hold, bare))
    await release.wait()
    peak = rss_kib(pid)
    await holding
    pids = [pid] if writer is None else [pid, writer]
    started, cpu = time.perf_counter(), sum(cpu_s(p) for p in pids)
    hangups: list[float] = []
    results = await load(port, calls, calls, None, bare, hangups)
    elapsed = time.perf_counter() - started
    # A session ends after its rating is written (ivr/flows/base.py): in a burst every call
    # reaches SAVE together, so the writes left after the last HANGUP show how much of the
    # run was the database's and how much the AGI's.
    to_hangup = max(hangups) - started
    cpu = sum(cpu_s(p) for p in pids) - cpu
    assert all(r.commands and r.commands[-1] == "HANGUP" for r in results), name
    turns = sorted(t for r in results for t in r.turnaround_s)
    by_command: dict[str, list[float]] = {}
    for r in results:
        for command, took in zip(r.commands, r.turnaround_s, strict=True):
            word = command.split()[0] if command.startswith("HANGUP") else command.split()[2]
            by_command.setdefault(word.rsplit("/", 1)[-1], []).append(took)
    print(
        f"  {name} p99 ms by command: "
        + ", ".join(
            f"{c} {sorted(t)[int(len(t) * 0.99) - 1] * 1000:.1f}" for c, t in by_command.items()
        )
    )
    print(
        f"  {name}: last HANGUP sent after {to_hangup:.3f} s, last session closed after "
        f"{elapsed:.3f} s"
    )
    return {
        "calls_per_s": calls / elapsed,
        "p50_ms": statistics.median(turns) * 1000,
        "p99_ms": turns[int(len(turns) * 0.99) - 1] * 1000,
        "commands": len(turns) / calls,
        "kib_per_call": (peak - baseline) / calls,
        "cpu_ms_per_call": cpu * 1000 / calls,
        "to_hangup_per_s": calls / to_hangup,
    }


async def postgres_database() -> tuple[str, Callable[[], object]]:
    import asyncpg

    name = f"pingjia_bench_{TAG}"
    conn = await asyncpg.connect(POSTGRES_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


async def bench(backend: str, calls: int, data: str, slots: int, level: str) -> dict[str, float]:
    global TAG
    TAG = uuid.uuid4().hex[:6]  # every run its own cases (and database): none rated before
    drop = None
    database, _, extra = backend.partition("+")
    if extra not in ("", "writer") or database not in ("bare", "sqlite", "postgres"):
        raise SystemExit(f"unknown backend {backend!r}")
    if database == "postgres":
        url, drop = await postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{data}/bench-{TAG}.db"
    # Spawned, not forked: a fork would start from this process's heap, grown by the earlier
    # runs' load, and hide the memory a call takes (--rounds showed 0.6 KiB/call after one).
    spawn = mp.get_context("spawn")
    port = spawn.Value("i", 0)
    writer = None
    if database == "bare":
        child = spawn.Process(target=run_bare, args=(port,), daemon=True)
    else:
        await prepare(url, data, calls, TAG)
        path = None
        if extra == "writer":
            path = f"{data}/writer-{TAG}.sock"
            settings = functools.partial(_settings, url, data)
            ready = spawn.Event()
            writer = spawn.Process(target=serve_writer, args=(settings, path, ready), daemon=True)
            writer.start()
            if not await asyncio.to_thread(ready.wait, 60):
                raise RuntimeError("the writer process did not start")
        child = spawn.Process(
            target=run_pingjia, args=(url, data, port, slots, level, path), daemon=True
        )
    child.start()
    try:
        while port.value == 0:  # type: ignore[attr-defined]  # noqa: ASYNC110 (set by a child process)
            await asyncio.sleep(0.05)
        assert child.pid is not None
        writer_pid = writer.pid if writer is not None else None
        return await measure(backend, child.pid, port.value, calls, writer_pid)  # type: ignore[attr-defined]
    finally:
        for process in (child, writer):
            if process is not None:
                process.terminate()
                process.join()
        if drop is not None:
            await drop()  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="concurrent calls per backend")
    parser.add_argument("--backends", default="bare,sqlite,postgres")
    parser.add_argument(
        "--thanks-ms",
        type=int,
        default=0,
        help="real time the thank-you plays before Asterisk's reply (0: virtual, as all prompts)",
    )
    parser.add_argument(
        "--db-slots",
        type=int,
        default=0,
        help="IVR database admission limit (0: the pool's capacity, as `pingjia serve`)",
    )
    parser.add_argument(
        "--prompt-ms",
        type=int,
        default=0,
        help="real time every other prompt plays before the caller's key (0: virtual time)",
    )
    parser.add_argument(
        "--ramp-s", type=float, default=0.0, help="start the calls over this many seconds"
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the server's PINGJIA_LOG_LEVEL (INFO, the default of `pingjia serve`, writes "
        "three lines per call; at volume WARNING is advised: README, settings)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every backend this many times, interleaved; medians are reported (burst "
        "figures swing by 2x from minute to minute on a shared machine)",
    )
    args = parser.parse_args()
    global THANKS_MS, PROMPT_MS, RAMP_S
    THANKS_MS, PROMPT_MS, RAMP_S = args.thanks_ms, args.prompt_ms, args.ramp_s
    print(
        f"{args.calls} concurrent calls, {os.cpu_count()} CPUs, flow: keys 4,1,# (barge-in), "
        f"thank-you plays {THANKS_MS} ms, other prompts {PROMPT_MS} ms, calls start over "
        f"{RAMP_S} s, db slots {args.db_slots or 'pool'}, log level {args.log_level}"
    )
    print(
        f"{'backend':9} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cmds':>5} {'KiB/call':>9}"
        f" {'CPU ms/call':>11} {'to HANGUP/s':>12}"
    )
    backends = args.backends.split(",")
    runs: dict[str, list[dict[str, float]]] = {b: [] for b in backends}
    with tempfile.TemporaryDirectory() as data:
        for _ in range(args.rounds):  # interleaved, so a slow minute hits every backend
            for backend in backends:
                row = asyncio.run(bench(backend, args.calls, data, args.db_slots, args.log_level))
                runs[backend].append(row)
                print_row(backend, row)
    if args.rounds > 1:
        print(f"median of {args.rounds} rounds:")
        for backend in backends:
            print_row(backend, {k: statistics.median(r[k] for r in runs[backend]) for k in COLUMNS})
    if "bare" in runs:
        bare = statistics.median(r["calls_per_s"] for r in runs["bare"])
        for backend in backends:
            if backend != "bare":
                share = statistics.median(r["calls_per_s"] for r in runs[backend]) / bare
                # Each round's own ratio too: a round's runs follow each other within seconds,
                # so they share the machine's state (bare alone swings by 30 % between rounds).
                ratios = [
                    mine["calls_per_s"] / its_bare["calls_per_s"]
                    for mine, its_bare in zip(runs[backend], runs["bare"], strict=True)
                ]
                print(
                    f"{backend}: {share:.0%} of the bare panoramisk handler's calls/s "
                    f"(per round: {', '.join(f'{r:.0%}' for r in ratios)}; "
                    f"median {statistics.median(ratios):.0%})"
                )
        bare_hangups = statistics.median(r["to_hangup_per_s"] for r in runs["bare"])
        for backend in backends:
            if backend != "bare":
                agi = statistics.median(r["to_hangup_per_s"] for r in runs[backend])
                print(
                    f"{backend}: {agi / bare_hangups:.0%} of bare's calls/s counted to the last "
                    "HANGUP (sessions still close only once their rating is written)"
                )


COLUMNS = (
    "calls_per_s",
    "p50_ms",
    "p99_ms",
    "commands",
    "kib_per_call",
    "cpu_ms_per_call",
    "to_hangup_per_s",
)


def print_row(backend: str, row: dict[str, float]) -> None:
    print(
        f"{backend:9} {row['calls_per_s']:8.0f} {row['p50_ms']:7.2f} "
        f"{row['p99_ms']:7.2f} {row['commands']:5.1f} {row['kib_per_call']:9.1f}"
        f" {row['cpu_ms_per_call']:11.2f} {row['to_hangup_per_s']:12.0f}"
    )


if __name__ == "__main__":
    main()
