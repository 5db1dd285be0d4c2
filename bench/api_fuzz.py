"""Schemathesis over a running pingjia, every role, `--checks all`: the bigger run.

    .venv/bin/python -m bench.api_fuzz --examples 200 [--postgres URL]

Starts the HTTP side on a throwaway SQLite database (or the given PostgreSQL database, which
it migrates and fills), then runs `st run` once per role and once without a token; prints
each run's summary and exits non-zero when any run found a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pingjia.auth import ROLES
from tests.api_fuzz import fuzz, running_server
from tests.conftest import make_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--postgres", help="postgresql+asyncpg://… of an empty database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite+aiosqlite:///{folder}/fuzz.db"
        settings = make_settings(url, Path(folder), sweeps=False)
        failed = 0
        with running_server(settings) as server:
            for role in (*ROLES, None):
                started = time.monotonic()
                problems = fuzz(server, role, args.examples)
                took = time.monotonic() - started
                print(f"== {role or 'no token'}: {len(problems)} failing run(s), {took:.0f} s")
                for problem in problems:
                    print(problem)
                failed += len(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
