"""`pingjia scheduler --once` as an operator runs it, against a fake central store.

Faults tried: a case left unrated past its default time (rated by the run), an outbox row
waiting for the store (posted by the run), a second run (nothing left to do).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pingjia.composition import build_services
from rating.cases.registration import ServiceRecord
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.central_store import FakeCentralStore


async def run_once(tmp_path: Path, url: str, store_url: str) -> tuple[int, str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PINGJIA_DATABASE_URL": url,
        "PINGJIA_DATA_DIR": str(tmp_path),
        "PINGJIA_SECRET_KEY": "test-secret-key",
        "PINGJIA_CENTRAL_STORE_URL": store_url,
        "PINGJIA_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingjia.cli",
        "scheduler",
        "--once",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_scheduler_once_defaults_and_posts(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    services = await build_services(make_settings(url, tmp_path), state=MemoryState())
    completed = datetime.now(UTC) - timedelta(days=8)
    await services.ratings.register(
        ServiceRecord("C-old", "consultation", "13812345678", completed),
        actor="t",
        now=completed,
    )
    await services.close()
    store = FakeCentralStore()
    await store.start()
    try:
        code, out, err = await run_once(tmp_path, url, store.url)
        assert code == 0, err
        lines = dict(line.split(": ") for line in out.splitlines())
        assert lines["default_ratings"] == "1"
        assert lines["outbox"] == "1"
        assert "deadline_alerts" in lines and "stats_rollup" in lines
        [posted] = store.to("/ratings")
        assert posted.json["case_no"] == "C-old"
        code, out, err = await run_once(tmp_path, url, store.url)
        assert code == 0, err
        assert "default_ratings: 0" in out and "outbox: 0" in out
    finally:
        await store.stop()
