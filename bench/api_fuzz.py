"""Schemathesis over a running pingjia, every role, `--checks all`: the bigger run.

    .venv/bin/python -m bench.api_fuzz --examples 200 [--postgres URL]

Starts the HTTP side on a throwaway SQLite database (or the given PostgreSQL database, which
it migrates and fills), then runs `st run` once per role and once without a token, every
phase; prints a table (operations, test cases generated, failures, seconds per caller), each
failing run's report, and exits non-zero when any run found a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pingjia.auth import ROLES
from tests.api_fuzz import FuzzRun, run, running_server
from tests.conftest import make_settings


def table(database: str, examples: int, runs: list[FuzzRun]) -> str:
    """The figures as a Markdown table, a row per caller and one for them all."""
    lines = [
        f"{database}, --examples {examples}:",
        "",
        "| caller | operations | test cases | failures | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for done in runs:
        lines.append(
            f"| {done.caller} | {done.operations} | {done.generated} | {done.failures} "
            f"| {done.seconds:.0f} |"
        )
    lines.append(
        f"| all | {max((r.operations for r in runs), default=0)} "
        f"| {sum(r.generated for r in runs)} | {sum(r.failures for r in runs)} "
        f"| {sum(r.seconds for r in runs):.0f} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--postgres", help="postgresql+asyncpg://… of an empty database")
    parser.add_argument("--roles", default=",".join((*ROLES, "none")), help="callers to run")
    args = parser.parse_args()
    callers = [None if name == "none" else name for name in args.roles.split(",")]
    runs: list[FuzzRun] = []
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite+aiosqlite:///{folder}/fuzz.db"
        settings = make_settings(url, Path(folder), sweeps=False)
        started = time.monotonic()
        with running_server(settings) as server:
            for role in callers:
                done = run(server, role, args.examples)
                runs.append(done)
                print(
                    f"== {done.caller}: {done.failures} failure(s), {done.seconds:.0f} s",
                    flush=True,
                )
                for problem in done.problems():
                    print(problem, flush=True)
        print(table("PostgreSQL" if args.postgres else "SQLite", args.examples, runs))
        print(f"wall time {time.monotonic() - started:.0f} s")
    return 1 if any(r.exit_code for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
