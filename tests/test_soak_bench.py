"""bench/soak.py stays runnable: a short run on two nodes, its JSON checked; its verdict can fail.

The short run (15 s of load) starts two `pingjia serve` processes on a database of its own and
the test's Redis database, and must end with every count check passed and no error: calls,
SMS replies and ticket work each done at least once, every rated case rated once, every
ticket transferred and closed once, every outbox item at the fake central store once. The
verdict (bench/soak_stats.py) is fed made-up rows: a node whose memory grows, a connection
count that keeps climbing and a p99 that doubles are each judged as such.

Bad inputs tried: a leak (RSS +1 MiB a minute), a pool that never stops opening sessions, a
latency that drifts; too few samples to judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from soak_stats import judge  # noqa: E402


@pytest.mark.postgres
@pytest.mark.redis
def test_a_short_soak_counts_everything_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "soak.json"
    env = {**os.environ, "PINGJIA_TEST_POSTGRES_URL": postgres_url}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            *("--minutes", "0.25", "--interval", "5", "--settle", "60"),
            *("--calls", "2", "--sms", "1", "--overdue", "30"),
            *("--redis-url", redis_url, "--json", str(out)),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    counts = result["counts"]
    assert result["checks"] and all(result["checks"].values()), result["checks"]
    assert counts["errors"] == {} and result["nodes_died"] == []
    done = counts["done"]
    assert done["call"] >= 20 and done["sms"] >= 10 and done["ticket"] >= 5, done
    assert counts["adopted"] == counts["expected_adopted"] >= done["call"] + done["sms"]
    assert counts["tickets"] == counts["tickets_closed"] == counts["tickets_at_12345"] > 0
    assert counts["store_ratings_posted"] == counts["adopted"]
    assert len(result["rows"]) >= 3
    for row in result["rows"]:
        assert set(row["nodes"]) == {"a", "b"}
        assert all(n["rss_mib"] > 0 and n["fds"] > 0 and n["pg"] > 0 for n in row["nodes"].values())
    assert result["verdict"]["judged"] is False  # too short to judge trends


def rows(minutes: int, rss: float = 0.0, pg: float = 0.0, p99: float = 0.0) -> list[dict[str, Any]]:
    """Made-up minute rows; `rss`, `pg`, `p99`: growth per minute from 100 MiB, 5, 50 ms."""
    return [
        {
            "t_min": float(m),
            "nodes": {
                "a": {"rss_mib": 100 + rss * m, "fds": 30, "pg": int(5 + pg * m), "redis": 1}
            },
            "latency": {"call": {"n": 100, "p50": 20.0, "p99": 50 + p99 * m}},
        }
        for m in range(1, minutes + 1)
    ]


def test_the_verdict_sees_flat_runs_and_each_kind_of_growth() -> None:
    flat = judge(rows(30), 30)
    assert flat["ok"] and flat["memory_flat"] and flat["connections_flat"] and flat["p99_stable"]
    leak = judge(rows(30, rss=1.0), 30)
    assert not leak["ok"] and not leak["memory_flat"] and leak["connections_flat"]
    assert leak["memory"]["a"]["slope_mib_per_min_2nd_half"] == pytest.approx(1.0)
    # A slow leak within 10 % at the end is still seen by its slope.
    slow = judge(rows(30, rss=0.2), 30)
    assert slow["memory"]["a"]["growth_pct"] < 10 and not slow["memory_flat"]
    climbing = judge(rows(30, pg=0.5), 30)
    assert not climbing["connections_flat"] and climbing["memory_flat"]
    drifting = judge(rows(30, p99=5.0), 30)
    assert not drifting["p99_stable"] and drifting["memory_flat"]
    assert judge(rows(2), 30)["ok"] is False
