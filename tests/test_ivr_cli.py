"""`pingjia serve` with FastAGI, then `pingjia call`, as a new user tries them.

Bad inputs tried: garbage on the AGI port between calls, a call with no key at all, a bad
`--keys` string, a call to a port where nothing listens, a softphone run from another folder
with another (empty) database than the server's (it asks the server, so it still prints the
result), without a token, with a token the server does not know.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import free_port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PINGJIA_DATA_DIR": str(tmp_path / "data"),
        "PINGJIA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ivr.db",
        "PINGJIA_HTTP_PORT": str(free_port()),
        "PINGJIA_AGI_PORT": str(free_port()),
        "PINGJIA_SECRET_KEY": "cli-test-secret",
        "PINGJIA_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pingjia.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(env["PINGJIA_AGI_PORT"])), 0.2).close()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
    token = subprocess.run(
        [sys.executable, "-m", "pingjia.cli", "token", "create", "--role", "agent", "--name", "t"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert token.returncode == 0, token.stderr
    env["PINGJIA_TOKEN"] = token.stdout.strip()  # `pingjia call` reads the result with it
    yield process
    process.terminate()
    process.wait(10)
    log.close()


def call(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingjia.cli", "call", *args],
        env={**env, "PINGJIA_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_serve_then_call(
    env: dict[str, str], server: subprocess.Popen[str], tmp_path: Path
) -> None:
    rated = call(env, "--keys", "4,1,#")
    assert rated.returncode == 0, rated.stderr
    assert "请选择原因" in rated.stdout and "key 4" in rated.stdout
    assert "不满意 (level 4) via ivr, tags ['staff_passive']" in rated.stdout
    assert "  ticket " in rated.stdout

    with socket.create_connection(("127.0.0.1", int(env["PINGJIA_AGI_PORT"]))) as garbage:
        garbage.sendall(b"\x16\x03\x01 not agi at all\n\n")
        assert garbage.recv(100) == b""

    silent = call(env, "--case", "C100", "--keys", "")
    assert "case C100: pending (no rating)" in silent.stdout, silent.stdout
    left = call(env, "--case", "C101", "--keys", "5,h")
    assert "case C101: rated, 非常不满意 (level 5)" in left.stdout, left.stdout
    # Another folder, another database: the result comes from the server all the same.
    (tmp_path / "elsewhere").mkdir()
    elsewhere = {**env, "PINGJIA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/other.db"}
    found = call(elsewhere, "--case", "C102", "--keys", "1", cwd=tmp_path / "elsewhere")
    assert found.returncode == 0, found.stderr
    assert "case C102: rated, 非常满意 (level 1) via ivr" in found.stdout, found.stdout
    assert not (tmp_path / "other.db").exists()  # no local database was opened
    assert list((tmp_path / "elsewhere").iterdir()) == []
    unnamed = call({k: v for k, v in env.items() if k != "PINGJIA_TOKEN"}, "--keys", "1")
    assert unnamed.returncode == 0, unnamed.stderr  # the call itself went through
    assert "case " not in unnamed.stdout and "--token or PINGJIA_TOKEN" in unnamed.stderr
    wrong = call({**env, "PINGJIA_TOKEN": "pj_not-a-token"}, "--case", "C103", "--keys", "2")
    assert wrong.returncode == 1 and "refused the token (401)" in wrong.stderr, wrong.stderr
    stranger = call(env, "--case", "C104", "--keys", "", "--api", "http://127.0.0.1:9")
    assert stranger.returncode == 1 and "cannot reach the server's API" in stranger.stderr
    server.terminate()
    server.wait(10)
    log = (tmp_path / "serve.log").read_text()
    assert "agi connection rejected" in log and "agi=agi://127.0.0.1:" in log


def test_call_bad_input(env: dict[str, str]) -> None:
    bad = call(env, "--keys", "4,x")
    assert bad.returncode == 2 and "bad key 'x'" in bad.stderr
    nobody = call(env, "--keys", "1", "--port", str(free_port()))
    assert nobody.returncode == 1 and "is `pingjia serve` running?" in nobody.stdout


def test_call_can_simulate_a_badly_deployed_asterisk(
    env: dict[str, str], server: subprocess.Popen[str], tmp_path: Path
) -> None:
    """`--missing-sound rating_greeting`: the caller still rates on the menu; `--missing-sound
    beep` and `--no-recordings-folder`: the caller is thanked, no voice; the server's log has
    an ERROR line for each and /metrics counts them."""
    greeting = call(env, "--case", "C200", "--keys", "2", "--missing-sound", "rating_greeting")
    assert "🔇 (pingjia/cmn/rating_greeting: no such sound" in greeting.stdout, greeting.stdout
    assert "case C200: rated, 满意 (level 2)" in greeting.stdout
    beep = call(env, "--case", "C201", "--keys", "4,1,t3000", "--missing-sound", "beep")
    assert "(nothing recorded: Asterisk answered '200 result=-1 (randomerror) endpos=0')" in (
        beep.stdout
    )
    assert "tags ['staff_passive'], voice -" in beep.stdout
    folder = call(env, "--case", "C202", "--keys", "4,1,t3000", "--no-recordings-folder")
    assert "(writefile)" in folder.stdout and "voice -" in folder.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{env['PINGJIA_HTTP_PORT']}/metrics") as page:
        text = page.read().decode()
    assert 'pingjia_agi_missing_prompts_total{prompt="pingjia/cmn/rating_greeting"} 1.0' in text
    assert 'pingjia_agi_recording_failures_total{problem="beep"} 1.0' in text
    assert 'pingjia_agi_recording_failures_total{problem="writefile"} 1.0' in text
    server.terminate()
    server.wait(10)
    log = (tmp_path / "serve.log").read_text()
    assert "prompt missing on the Asterisk host" in log and "sound=beep" in log
    assert "folder=/var/spool/asterisk/monitor/pingjia" in log
    assert "prompts missing on the Asterisk host" in log  # the check after the first call
