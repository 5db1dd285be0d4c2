"""A `pingjia serve` node SIGKILLed the moment Asterisk gets its HANGUP has stored the rating.

One node on a throw-away PostgreSQL. The test holds the case's evaluation row locked
(`SELECT … FOR UPDATE`), so the rating's write, which adopts the rating by an UPDATE of that
row, cannot commit: a database slower than the thank-you. HANGUP must not come while the write
waits; once the lock is released it comes, and the node is killed as it arrives (before the
simulator even answers it). Before the fix (HANGUP right after the thank-you, the commit
after), the node died with the write blocked and the thanked caller's rating was lost.

Bad inputs tried: a write blocked for 1.5 s after the thank-you, a node killed at HANGUP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from asterisk_sim.caller import Key, ScriptedCaller
from asterisk_sim.simulator import CallResult, Simulator
from asterisk_sim.softphone import prompt_sounds
from pingjia.composition import build_services
from prompts.catalog import AUDIO
from rating.cases.registration import ServiceRecord
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.faults.test_two_nodes import Node, wait_listening
from tests.throwaway import ThrowawayRedis, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SOUNDS = prompt_sounds(AUDIO)
HELD_S = 1.5  # how long the write stays blocked after the thank-you was asked for
EVALUATION = (
    "SELECT e.id FROM evaluations e JOIN cases c ON c.id = e.case_id "
    "WHERE c.case_no = $1 FOR UPDATE OF e"
)
ADOPTED = (
    "SELECT count(*) FROM ratings r JOIN evaluations e ON e.id = r.evaluation_id "
    "JOIN cases c ON c.id = e.case_id WHERE c.case_no = $1 AND r.adopted"
)


def start_node(db: str, redis_url: str, tmp_path: Path) -> Node:
    agi_port, http_port = free_port(), free_port()
    log = tmp_path / "node.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PINGJIA_DATABASE_URL": db,
        "PINGJIA_REDIS_URL": redis_url,
        "PINGJIA_SECRET_KEY": "ivr-commit-secret",
        "PINGJIA_DATA_DIR": str(tmp_path / "data"),
        "PINGJIA_AGI_PORT": str(agi_port),
        "PINGJIA_HTTP_PORT": str(http_port),
        "PINGJIA_LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pingjia.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Node("node", process, agi_port, log)


async def register(db: str, tmp_path: Path, case_no: str) -> None:
    services = await build_services(
        make_settings(db, tmp_path / "setup"), migrate=False, state=MemoryState()
    )
    now = datetime.now(UTC)
    try:
        record = ServiceRecord(case_no, "complaint", "13800000001", now - timedelta(hours=1))
        await services.ratings.register(record, actor="test", now=now)
    finally:
        await services.close()


async def test_a_node_killed_at_hangup_has_stored_the_thanked_rating(
    fault_db: str, fault_redis: ThrowawayRedis, tmp_path: Path
) -> None:
    await register(fault_db, tmp_path, "K1")
    node = start_node(fault_db, fault_redis.url(0), tmp_path)
    try:
        await wait_listening(node)
        dsn = fault_db.replace("postgresql+asyncpg://", "postgresql://")
        locker = await asyncpg.connect(dsn, timeout=10)
        try:
            await run_call(node, locker)
        finally:
            await locker.close()
        assert await locker_count(dsn, "K1") == 1, node.log.read_text()[-3000:]
    finally:
        if node.alive():
            node.process.kill()
            node.process.wait(10)


async def run_call(node: Node, locker: asyncpg.Connection) -> None:
    thanking = asyncio.Event()
    hangup_at: list[float] = []

    async def watch(line: str) -> None:
        if "rating_thanks" in line:
            thanking.set()
        elif line == "HANGUP":
            hangup_at.append(time.monotonic())
            node.process.send_signal(signal.SIGKILL)  # before Asterisk even answers it
            node.process.wait(10)

    lock = locker.transaction()
    await lock.start()
    await locker.fetch(EVALUATION, "K1")  # the write's adoption now waits for this lock
    # 不满意 (4), reason 3, # to skip the message: the thank-you follows at once.
    caller = ScriptedCaller([Key("4"), Key("3"), Key("#")])
    simulator = Simulator(caller, SOUNDS, before_reply=watch)
    calling = asyncio.create_task(simulator.call("127.0.0.1", node.agi_port, "rating?case=K1"))
    try:
        await asyncio.wait_for(thanking.wait(), 20)
        await asyncio.sleep(HELD_S)
        # The thank-you has ended (virtual time) and the write cannot commit: no HANGUP.
        assert hangup_at == [] and node.alive(), "HANGUP sent before the rating's commit"
    finally:
        await lock.rollback()  # the database answers again
    result: CallResult = await asyncio.wait_for(calling, 20)
    assert result.commands[-1] == "HANGUP" and hangup_at and not node.alive()


async def locker_count(dsn: str, case_no: str) -> int:
    reader = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await reader.fetchval(ADOPTED, case_no))
    finally:
        await reader.close()
