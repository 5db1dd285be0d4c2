"""What one log line costs through pingjia's logging (pingjia/logs.py), per format.

A call at INFO writes two lines ("ivr rating stored", "agi session done"), an SMS reply two or
three: this is their CPU beside the call's. Lines go to /dev/null, so the terminal's speed is
not measured.

    .venv/bin/python bench/log_bench.py [--lines 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from pingjia import logs


def per_line(lines: int, level: str) -> float:
    log = structlog.get_logger("pingjia.ivr")
    emit = getattr(log, level)
    started = time.perf_counter()
    for _ in range(lines):
        emit("ivr rating stored", case_no="C1", level=4, adopted=True, ticket="2611220001")
    return (time.perf_counter() - started) / lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    sink = open(os.devnull, "w")  # open for the process's life
    structlog.contextvars.bind_contextvars(script="rating", uniqueid="1795333965.5400261")
    for fmt in ("console", "json"):
        logs.configure("INFO", fmt, stream=sink)
        written = per_line(args.lines, "info")
        dropped = per_line(args.lines, "debug")
        print(
            f"{fmt:8} INFO line written {written * 1e6:5.1f} µs   "
            f"DEBUG line dropped {dropped * 1e6:4.1f} µs"
        )


if __name__ == "__main__":
    main()
