"""Voice messages heard where they are needed: the console's ticket page and the ticket API
play the caller's recording from the shared recordings folder (pingjia/recordings.py).

Bad inputs tried here: a voice_ref outside the recordings folder, one climbing out with `..`,
a symbolic link in the folder pointing outside it, a file that is gone, a voice_ref that is
not one (`asterisk://` with no host), a ticket without a voice message, another agency's
ticket (404 as if absent), no token, and a Range request (206 with exactly those bytes).
"""

from __future__ import annotations

import math
import struct
import wave
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from pingjia.recordings import RecordingFolder
from rating.cases.registration import ServiceRecord
from rating.errors import NotFound
from rating.ratings.requests import RatingRequest
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock

ASTERISK_DIR = "/var/spool/asterisk/monitor/pingjia"
AGENCY = "台山市市场监督管理局"


def write_tone(path: Path, seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A 440 Hz tone as Asterisk's RECORD FILE writes WAV (8 kHz, 16-bit mono)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path.read_bytes()


# --- where a voice_ref's file is -------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> RecordingFolder:
    mount = tmp_path / "mnt"
    mount.mkdir()
    write_tone(mount / "10.0.0.5-1796455624.0.wav", 0.1)
    return RecordingFolder(ASTERISK_DIR, mount)


def test_a_voice_ref_is_found_under_this_hosts_mount(folder: RecordingFolder) -> None:
    new_form = f"asterisk://10.0.0.5{ASTERISK_DIR}/10.0.0.5-1796455624.0.wav"
    old_form = f"{ASTERISK_DIR}/10.0.0.5-1796455624.0.wav"  # stored before the host was kept
    expected = folder.mount / "10.0.0.5-1796455624.0.wav"
    assert folder.locate(new_form) == expected
    assert folder.locate(old_form) == expected


@pytest.mark.parametrize(
    ("voice_ref", "says"),
    [
        ("/etc/passwd", "不在共享录音文件夹"),
        (f"{ASTERISK_DIR}/../../../../etc/passwd", "不在共享录音文件夹"),
        (f"asterisk://10.0.0.5{ASTERISK_DIR}/gone.wav", "文件不存在：gone.wav"),
        ("asterisk:///var/spool/x.wav", "无法识别"),
        (f"{ASTERISK_DIR}/escape.wav", "文件不存在：escape.wav"),
    ],
)
def test_a_voice_ref_that_cannot_be_served_says_why(
    folder: RecordingFolder, tmp_path: Path, voice_ref: str, says: str
) -> None:
    secret = tmp_path / "secret.wav"
    write_tone(secret, 0.1)
    (folder.mount / "escape.wav").symlink_to(secret)  # a link leading out of the folder
    with pytest.raises(NotFound, match=says) as caught:
        folder.locate(voice_ref)
    assert caught.value.code == "voice_not_found"


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture
async def voiced(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    mount = tmp_path / "recordings"
    mount.mkdir()
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/pingjia.db",
        tmp_path,
        recordings_dir=ASTERISK_DIR,
        recordings_mount=str(mount),
    )
    built = await build_services(settings, clock=clock, state=MemoryState())
    try:
        yield built
    finally:
        await built.close()


async def rated_with_voice(services: Services, case_no: str, voice_ref: str | None) -> str:
    """A case rated 不满意 on the phone with a voice message: its ticket number."""
    now = services.clock()
    await services.ratings.register(
        ServiceRecord(
            case_no=case_no,
            kind="complaint",
            phone="13812345678",
            completed_at=datetime.fromisoformat("2026-11-20T17:30:00+08:00"),
            agency=AGENCY,
        ),
        actor="test",
        now=now,
    )
    outcome = await services.ratings.rate(
        RatingRequest(case_no, 4, "ivr", ["staff_passive"], voice_ref=voice_ref),
        actor="ivr",
        now=now,
    )
    assert outcome.ticket is not None and outcome.ticket.ticket_no
    return outcome.ticket.ticket_no


async def test_the_api_gives_the_voice_url_and_serves_the_audio_with_range(
    aiohttp_client: Any, voiced: Services, tmp_path: Path
) -> None:
    audio = write_tone(tmp_path / "recordings" / "pbx1-1.1.wav")
    no = await rated_with_voice(voiced, "C1", f"asterisk://pbx1{ASTERISK_DIR}/pbx1-1.1.wav")
    silent = await rated_with_voice(voiced, "C2", None)
    gone = await rated_with_voice(voiced, "C3", f"asterisk://pbx1{ASTERISK_DIR}/pbx1-9.9.wav")
    client: TestClient = await aiohttp_client(build_app(voiced))
    clock = voiced.clock
    agent = {"Authorization": f"Bearer {await voiced.tokens.create('agent', 'a', clock())}"}
    other = await voiced.tokens.create("agency", "o", clock(), agency="台山市公安局")
    stranger = {"Authorization": f"Bearer {other}"}

    detail = await (await client.get(f"/api/v1/tickets/{no}", headers=agent)).json()
    assert detail["voice_url"] == f"/api/v1/tickets/{no}/voice"
    whole = await client.get(detail["voice_url"], headers=agent)
    assert whole.status == 200
    assert whole.headers["Content-Type"] == "audio/wav"
    assert await whole.read() == audio
    part = await client.get(detail["voice_url"], headers={**agent, "Range": "bytes=44-143"})
    assert part.status == 206
    assert await part.read() == audio[44:144]

    refused = [
        (await client.get(f"/api/v1/tickets/{no}/voice"), 401),
        (await client.get(f"/api/v1/tickets/{no}/voice", headers=stranger), 404),
        (await client.get(f"/api/v1/tickets/{silent}/voice", headers=agent), 404),
        (await client.get(f"/api/v1/tickets/{gone}/voice", headers=agent), 404),
    ]
    for response, status in refused:
        assert response.status == status
        assert (await response.json())["error"]["code"]
    assert (await refused[3][0].json())["error"]["code"] == "voice_not_found"
    silent_detail = await (await client.get(f"/api/v1/tickets/{silent}", headers=agent)).json()
    assert silent_detail["voice_url"] is None
    spec = await (await client.get("/api/openapi.json")).json()
    voice_get = spec["paths"]["/api/v1/tickets/{ticket_no}/voice"]["get"]
    assert "audio/wav" in voice_get["responses"]["200"]["content"]


async def test_the_console_ticket_page_offers_a_player_or_says_the_file_is_gone(
    aiohttp_client: Any, voiced: Services, tmp_path: Path
) -> None:
    write_tone(tmp_path / "recordings" / "pbx1-1.1.wav", 0.2)
    no = await rated_with_voice(voiced, "C1", f"asterisk://pbx1{ASTERISK_DIR}/pbx1-1.1.wav")
    gone = await rated_with_voice(voiced, "C3", f"{ASTERISK_DIR}/pbx1-9.9.wav")
    client: TestClient = await aiohttp_client(build_app(voiced))
    token = await voiced.tokens.create("agency", "本单位", voiced.clock(), agency=AGENCY)
    await sign_in(client, token)

    page = await (await client.get(f"/console/tickets/{no}")).text()
    assert f'<audio controls preload="metadata" src="/console/tickets/{no}/voice">' in page
    audio = await client.get(f"/console/tickets/{no}/voice", headers={"Range": "bytes=0-3"})
    assert audio.status == 206 and await audio.read() == b"RIFF"
    page = await (await client.get(f"/console/tickets/{gone}")).text()
    assert "<audio" not in page
    assert "语音留言文件不存在：pbx1-9.9.wav" in page
    missing = await client.get(f"/console/tickets/{gone}/voice")
    assert missing.status == 404
    assert "语音留言文件不存在" in await missing.text()


async def sign_in(client: TestClient, token: str) -> None:
    """Sign in to the console through its form, as the browser does."""
    form = await (await client.get("/console/signin")).text()
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        "/console/signin", data={"csrf": csrf, "token": token}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
