"""Schemathesis over /api/openapi.json, every operation, every role and no token, every check
(`--checks all`): no 500, every answer as the document says, every request the document calls
valid accepted and every one it calls invalid refused. On SQLite and on PostgreSQL.

Few examples here, so the suite stays fast; PINGJIA_FUZZ_EXAMPLES=200 runs a bigger one
(bench/README.md has the command and its last result).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pingjia.auth import ROLES
from tests.api_fuzz import fuzz, running_server
from tests.conftest import make_settings

EXAMPLES = int(os.environ.get("PINGJIA_FUZZ_EXAMPLES", "3"))
# The suite runs the generated (fuzzing) phase; bench/api_fuzz.py runs every phase.
PHASES = os.environ.get("PINGJIA_FUZZ_PHASES", "fuzzing")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/fuzz.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_every_operation_as_every_role_matches_the_document(
    fuzz_database: str, tmp_path: Path
) -> None:
    settings = make_settings(fuzz_database, tmp_path, sweeps=False)
    problems: list[str] = []
    # Every caller on SQLite; on PostgreSQL (what differs there is the database's refusals)
    # the widest role and no token, to keep the suite fast: bench/api_fuzz.py runs them all.
    callers = (*ROLES, None) if fuzz_database.startswith("sqlite") else ("admin", None)
    with running_server(settings) as server:
        for role in callers:
            problems += fuzz(server, role, EXAMPLES, phases=PHASES)
    assert not problems, "\n".join(problems)[-20000:]
