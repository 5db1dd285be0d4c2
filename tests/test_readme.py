"""The README's "Try it" block, run as written against a fresh `pingjia serve` in an empty
folder: every step must succeed (bash -e, curl --fail-with-body), any day it is run (times
come from `date`), and print what the README says it prints.

Bad inputs this guards against: a hard-coded completion date the default-rating sweep has
passed (409 already defaulted), a token line that prints more than the token, a softphone
that reads the folder's database instead of asking the server, an empty PINGJIA_REDIS_URL.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent


def sh_blocks(heading: str) -> list[str]:
    """The sh blocks of the README section under `## heading`, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks, f"the README's {heading} section has no sh block"
    return blocks


def try_it_block() -> str:
    return sh_blocks("Try it")[0]


@contextmanager
def serving(tmp_path: Path, **extra: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """An empty folder whose .venv is this one, and `pingjia serve` running from it."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the README's blocks activate .venv: run the suite from a virtualenv")
    (tmp_path / ".venv").symlink_to(sys.prefix)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PINGJIA_HTTP_PORT": str(free_port()),
        "PINGJIA_AGI_PORT": str(free_port()),
        "PINGJIA_REDIS_URL": "",  # as compose files leave it: unset, not a crash
        **extra,
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "pingjia"), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", int(env["PINGJIA_AGI_PORT"])), 0.2).close()
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
    # The blocks run without the server's own extra settings: what they need, they set.
    yield tmp_path, {k: v for k, v in env.items() if k not in extra}
    server.send_signal(signal.SIGINT)
    assert server.wait(15) == 0, (tmp_path / "serve.log").read_text()  # Ctrl-C stops cleanly
    log.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    with serving(tmp_path) as started:
        yield started


def run_block(block: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A README block run as a reader's shell runs it, stopping at the first failing line."""
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_try_it_runs_as_written(site: tuple[Path, dict[str, str]]) -> None:
    folder, env = site
    block = try_it_block()
    assert "date -Iseconds" in block and "2026-" not in block  # no date that can go stale
    done = run_block(block, folder, env)
    out = done.stdout
    assert '"status":"rated"' in out.replace(" ", "") and '"adopted":true' in out.replace(" ", "")
    assert re.search(r'"ticket_no":\s*"\d+"', out), out
    assert re.search(r"^pingjia_ratings_total\{.*\} 1\.0$", out, re.M), out
    assert "不满意 (level 4) via ivr, tags ['staff_passive']" in out, out
    assert re.search(r"^  ticket \d+ \(\w+\), deadlines callback \d{4}-", out, re.M), out
    assert (folder / "openapi.json").stat().st_size > 1000
    assert "Traceback" not in done.stderr, done.stderr


def test_sms_example_runs_as_written(tmp_path: Path) -> None:
    """The SMS section's two blocks: the server as its first block starts it (the callback key
    from there), then the second block as written, right after, any day."""
    server_block, reply_block = sh_blocks("SMS and the rating link")[:2]
    start = re.fullmatch(r"(PINGJIA_SMS_CALLBACK_KEY)=(\S+) pingjia serve\n", server_block)
    assert start, server_block
    assert "date -Iseconds" in reply_block and "2026-" not in reply_block
    with serving(tmp_path, **{start.group(1): start.group(2)}) as (folder, env):
        done = run_block(reply_block, folder, env)
    out = done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    case_no = re.search(r'"case_no":"(S\d{14})"', out.replace(" ", ""))
    assert case_no, out
    assert re.search(
        r"^✉  13900001111 → http://127\.0\.0\.1:\d+/sms/console/reply: .*HTTP 200$", out, re.M
    ), out
    assert "\n  handled: rated\n" in out, out
    assert f"case {case_no.group(1)}: rated, 非常不满意 (level 5) via sms" in out, out
    assert re.search(r"^  ticket \d+ \(new\), deadlines \{'callback': ", out, re.M), out
