"""What bench/soak.py measures of each node, and how it judges the run.

Per node, read from /proc and from the servers themselves (never from the node's own code):
resident memory, open file descriptors, PostgreSQL sessions (rows of `pg_stat_activity` whose
`client_port` is one of the node's own sockets) and Redis clients (`CLIENT LIST` entries whose
port is one of the node's sockets). Latencies are kept per kind of traffic per interval.

The verdict (`judge`):
- memory flat: per node, the last sample's RSS within 10 % of the baseline sample's (the one at
  minute 5, or a sixth into a shorter run) AND the least-squares RSS slope over the second half
  of the run at most 0.1 MiB/min (6 MiB an hour);
- connections flat: per node, the highest fds / PostgreSQL sessions / Redis clients of the
  last third at most the highest of the first two thirds plus a slack (fds 10, sessions and
  clients 2): pools fill up early and then stay bounded;
- p99 stable: per kind, the median of the intervals' p99 over the last third at most 1.5 × that
  of the first third, or within 10 ms of it (below that it is timer noise).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procstat import rss_kib

MEMORY_GROWTH_PCT = 10.0
MEMORY_SLOPE_MIB_PER_MIN = 0.1
CONNECTION_SLACK = {"fds": 10, "pg": 2, "redis": 2}
P99_RATIO = 1.5
P99_FLOOR_MS = 10.0


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(f"{fd_dir}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def tcp_sockets(pid: int) -> list[tuple[int, int]]:
    """(local port, remote port) of the process's established TCP sockets."""
    inodes = _socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and fields[3] == "01":  # 01: ESTABLISHED
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                found.append((local, remote))
    return found


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def node_sample(
    pid: int, pg_client_ports: list[int], redis_client_ports: list[int]
) -> dict[str, float]:
    """One node's figures; the client ports are those PostgreSQL and Redis list right now."""
    local = {port for port, _ in tcp_sockets(pid)}
    return {
        "rss_mib": round(rss_kib(pid) / 1024, 1),
        "fds": open_fds(pid),
        "pg": sum(1 for port in pg_client_ports if port in local),
        "redis": sum(1 for port in redis_client_ports if port in local),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


@dataclass
class Meter:
    """Latencies and errors per kind of traffic, for the interval under way and the run."""

    window: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    window_errors: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def ok(self, kind: str, ms: float) -> None:
        self.window[kind].append(ms)
        self.done[kind] += 1

    def error(self, kind: str, detail: str) -> None:
        self.window_errors[kind] += 1
        self.errors[kind] += 1
        if len(self.first_errors) < 20:
            self.first_errors.append(f"{kind}: {detail}"[:300])

    def cut(self) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
        """The interval's latencies per kind (n, p50, p99 in ms) and errors; starts the next."""
        kinds = {
            kind: {
                "n": len(ms),
                "p50": round(percentile(ms, 50), 1),
                "p99": round(percentile(ms, 99), 1),
            }
            for kind, ms in sorted(self.window.items())
            if ms
        }
        errors = dict(self.window_errors)
        self.window = defaultdict(list)
        self.window_errors = Counter()
        return kinds, errors


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(y for _, y in points)
    den = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / den if den else 0.0


def judge(rows: list[dict[str, Any]], minutes: float) -> dict[str, Any]:
    """The verdict over the interval rows (each: `t_min`, `nodes`, `latency`)."""
    if len(rows) < 3:
        return {"ok": False, "why": f"{len(rows)} samples: too few to judge"}
    base_at = min(5.0, minutes / 6)
    base = next(r for r in rows if r["t_min"] >= base_at)
    last = rows[-1]
    half = [r for r in rows if r["t_min"] >= minutes / 2]
    third = max(1, len(rows) // 3)
    early, late = rows[: len(rows) - third], rows[len(rows) - third :]
    memory, connections = {}, {}
    for name in last["nodes"]:
        base_rss, last_rss = base["nodes"][name]["rss_mib"], last["nodes"][name]["rss_mib"]
        growth = (last_rss - base_rss) / base_rss * 100
        slope = _slope([(r["t_min"], r["nodes"][name]["rss_mib"]) for r in half])
        memory[name] = {
            "baseline_min": base["t_min"],
            "baseline_mib": base_rss,
            "last_mib": last_rss,
            "growth_pct": round(growth, 1),
            "slope_mib_per_min_2nd_half": round(slope, 3),
            "flat": growth <= MEMORY_GROWTH_PCT and slope <= MEMORY_SLOPE_MIB_PER_MIN,
        }
        for what, slack in CONNECTION_SLACK.items():
            before = max(r["nodes"][name][what] for r in early)
            after = max(r["nodes"][name][what] for r in late)
            connections[f"{name}.{what}"] = {
                "max_first_two_thirds": before,
                "max_last_third": after,
                "flat": after <= before + slack,
            }
    p99 = {}
    kinds = sorted({k for r in rows for k in r["latency"]})
    for kind in kinds:
        first = [r["latency"][kind]["p99"] for r in rows[:third] if kind in r["latency"]]
        final = [r["latency"][kind]["p99"] for r in late if kind in r["latency"]]
        if not first or not final:
            continue
        a, b = statistics.median(first), statistics.median(final)
        p99[kind] = {
            "first_third_ms": a,
            "last_third_ms": b,
            "stable": b <= a * P99_RATIO or b - a <= P99_FLOOR_MS,
        }
    verdict = {
        "memory_flat": all(m["flat"] for m in memory.values()),
        "connections_flat": all(c["flat"] for c in connections.values()),
        "p99_stable": all(p["stable"] for p in p99.values()),
    }
    return {
        "ok": all(verdict.values()),
        **verdict,
        "memory": memory,
        "connections": connections,
        "p99": p99,
    }
