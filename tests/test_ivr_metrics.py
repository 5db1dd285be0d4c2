"""Prometheus metrics of FastAGI sessions, as `pingjia serve` registers them on /metrics.

Bad inputs tried here: a connection that sends garbage instead of an AGI environment, a call
to a script no flow serves, a caller who hangs up in the middle of the menu, a relative
recordings directory, one with a blank, an empty one.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from asterisk_sim.caller import Hang, Key, ScriptedCaller, Talk
from asterisk_sim.simulator import Simulator
from asterisk_sim.softphone import prompt_sounds
from ivr.flows import IvrContext, runners
from ivr.server import AgiServer
from pingjia.composition import Services
from pingjia.ivr_server import start_agi
from prompts.catalog import AUDIO
from rating.cases.registration import ServiceRecord
from tests.conftest import make_settings

SOUNDS = prompt_sounds(AUDIO)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_sessions_outcomes_and_turnaround_are_exported(services: Services) -> None:
    record = ServiceRecord("C1", "complaint", None, datetime(2026, 11, 20, 9, tzinfo=UTC))
    await services.ratings.register(record, actor="test", now=services.clock())
    context = IvrContext(ratings=services.ratings, clock=services.clock, profile=services.profile)
    server = AgiServer(runners(context), observer=services.metrics.agi, header_timeout=0.5)
    await server.start("127.0.0.1", 0)
    try:
        await Simulator(ScriptedCaller([Key("2")]), SOUNDS).call(
            "127.0.0.1", server.port, "rating?case=C1"
        )
        await Simulator(ScriptedCaller([Hang()]), SOUNDS).call(
            "127.0.0.1", server.port, "rating?case=C2"
        )
        await Simulator(ScriptedCaller([]), SOUNDS).call("127.0.0.1", server.port, "nosuch")
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.0\r\n")
        writer.close()
        for _ in range(100):
            if server.rejected:
                break
            await asyncio.sleep(0.01)
    finally:
        await server.close()
    text = services.metrics.render().body.decode()  # type: ignore[union-attr]
    assert sample(text, "pingjia_agi_sessions_started_total", script="rating") == 2
    finished = "pingjia_agi_sessions_finished_total"
    assert sample(text, finished, script="rating", outcome="completed") == 1
    assert sample(text, finished, script="rating", outcome="hangup") == 1
    assert sample(text, finished, script="unknown", outcome="unknown_script") == 1
    assert sample(text, "pingjia_agi_connections_rejected_total") == 1
    # Every command of the completed call was observed, and fast (no database in between).
    turnaround = "pingjia_agi_command_turnaround_seconds"
    streams = sample(text, f"{turnaround}_count", command="STREAM")
    assert streams >= 2
    assert sample(text, f"{turnaround}_bucket", command="STREAM", le="10.0") == streams
    assert sample(text, f"{turnaround}_count", command="HANGUP") == 1


async def test_recordings_dir_setting_reaches_the_flow(services: Services, tmp_path: Path) -> None:
    services.settings = make_settings(
        services.settings.database_url, tmp_path, agi_port=0, recordings_dir="/srv/pingjia/voice/"
    )
    await services.ratings.register(
        ServiceRecord("C1", "complaint", None, datetime(2026, 11, 20, 9, tzinfo=UTC)),
        actor="test",
        now=services.clock(),
    )
    server = await start_agi(services)  # as `pingjia serve` starts it
    try:
        result = await Simulator(ScriptedCaller([Key("5"), Key("9"), Talk(4000)]), SOUNDS).call(
            "127.0.0.1", server.port, "rating?case=C1"
        )
    finally:
        await server.close()
    rating = (await services.ratings.evaluation("C1")).ratings[0]
    voice = f"asterisk://127.0.0.1/srv/pingjia/voice/127.0.0.1-{result.uniqueid}.wav"
    assert rating.voice_ref == voice
    text = services.metrics.render().body.decode()  # type: ignore[union-attr]
    assert sample(text, "pingjia_agi_sessions_finished_total", script="rating", outcome="completed")


@pytest.mark.parametrize("bad", ["recordings", "/with blank/dir", ""])
def test_recordings_dir_must_be_absolute(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match="absolute path"):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, recordings_dir=bad)
