"""Tokens listed and revoked (issue 16.5): the API for admins, `pingjia token list|revoke`,
last-used times, and a revoke seen at once by another process on the same database.

Bad inputs tried here: the list and a revoke by a non-admin role (403), a revoke of an id that
does not exist (404) and of one that is not a number (422), a second revoke (no change), a
revoked token on the API and in a console session (refused), an agency token for an agency
no case names (refused unless --force), `token revoke` of an unknown name and of a name two
live tokens share (exit 2, nothing revoked).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.errors import InvalidInput
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.test_api import register
from tests.test_cli import run
from tests.test_console import sign_in

AGENCY = "台山市市场监督管理局"


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_admin_lists_and_revokes_tokens(
    client: TestClient, services: Services, aiohttp_client: Any, tmp_path: Path
) -> None:
    now = services.clock()
    admin = await services.tokens.create("admin", "ops", now)
    agent = await services.tokens.create("agent", "window", now)
    for role in ("agent", "agency", "bureau"):
        other = await services.tokens.create(
            role, f"{role}-x", now, agency=AGENCY if role == "agency" else None
        )
        for method, path in (("GET", "/api/v1/tokens"), ("DELETE", "/api/v1/tokens/1")):
            response = await client.request(method, path, headers=bearer(other))
            assert response.status == 403, (role, method)

    listed = await client.get("/api/v1/tokens", headers=bearer(admin))
    text = await listed.text()
    assert listed.status == 200 and admin not in text and agent not in text
    assert "hash" not in text
    items = {t["name"]: t for t in (await listed.json())["items"]}
    assert items["window"]["role"] == "agent" and items["window"]["revoked_at"] is None
    assert items["window"]["last_used_at"] is None and items["ops"]["last_used_at"] is not None
    assert items["agency-x"]["agency"] == AGENCY

    # Another process on the same database, as a second `pingjia serve` would be.
    second = await build_services(
        make_settings(services.settings.database_url, tmp_path),
        migrate=False,
        clock=services.clock,
        state=MemoryState(),
    )
    try:
        other_node = await aiohttp_client(build_app(second))
        assert (await other_node.get("/api/v1/evaluations", headers=bearer(agent))).status == 200
        window = items["window"]["id"]
        revoked = await client.delete(f"/api/v1/tokens/{window}", headers=bearer(admin))
        assert revoked.status == 200, await revoked.text()
        when = (await revoked.json())["revoked_at"]
        assert when is not None
        for node in (client, other_node):
            refused = await node.get("/api/v1/evaluations", headers=bearer(agent))
            assert refused.status == 401
    finally:
        await second.close()
    again = await client.delete(f"/api/v1/tokens/{window}", headers=bearer(admin))
    assert again.status == 200 and (await again.json())["revoked_at"] == when
    missing = await client.delete("/api/v1/tokens/999", headers=bearer(admin))
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "token_not_found"
    bad = await client.delete("/api/v1/tokens/abc", headers=bearer(admin))
    assert bad.status == 422

    document = await (await client.get("/api/openapi.json")).json()
    assert {"get"} <= set(document["paths"]["/api/v1/tokens"])
    assert {"delete"} <= set(document["paths"]["/api/v1/tokens/{token_id}"])


async def test_a_revoked_token_leaves_the_console_at_once(
    client: TestClient, services: Services
) -> None:
    token = await services.tokens.create("bureau", "desk", services.clock())
    await sign_in(client, token)
    [info] = [t for t in await services.tokens.list_tokens() if t.name == "desk"]
    await services.tokens.revoke(info.id, "admin:ops", services.clock())
    response = await client.get("/console/tickets", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/signin"


async def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, services: Services, clock: FakeClock
) -> None:
    token = await services.tokens.create("agent", "window", clock())

    async def last_used() -> Any:
        [info] = await services.tokens.list_tokens()
        return info.last_used_at

    assert await last_used() is None
    first = clock()
    assert (await client.get("/api/v1/evaluations", headers=bearer(token))).status == 200
    assert await last_used() == first
    clock.advance(seconds=30)
    assert (await client.get("/api/v1/evaluations", headers=bearer(token))).status == 200
    assert await last_used() == first  # within the minute: no write
    clock.advance(seconds=31)
    assert (await client.get("/api/v1/evaluations", headers=bearer(token))).status == 200
    assert await last_used() == first + timedelta(seconds=61)


async def test_an_agency_no_case_names_is_refused_unless_forced(
    client: TestClient, services: Services
) -> None:
    now = services.clock()
    with pytest.raises(InvalidInput) as caught:
        await services.tokens.issue("agency", "scj", now, agency=AGENCY)
    assert caught.value.code == "unknown_agency" and "--force" in caught.value.message
    assert await services.tokens.list_tokens() == []
    assert (
        await services.tokens.issue("agency", "scj", now, agency=AGENCY, force=True)
    ).startswith("pj_")
    agent = bearer(await services.tokens.create("agent", "desk", now))
    await register(client, agent, agency="台山市公安局")
    assert (await services.tokens.issue("agency", "police", now, agency="台山市公安局")).startswith(
        "pj_"
    )


def test_cli_lists_and_revokes(tmp_path: Path) -> None:
    refused = run(
        tmp_path, "token", "create", "--role", "agency", "--name", "scj", "--agency", AGENCY
    )
    assert refused.returncode == 2 and "--force" in refused.stderr
    made = run(
        tmp_path,
        "token",
        "create",
        "--role",
        "agency",
        "--name",
        "scj",
        "--agency",
        AGENCY,
        "--force",
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    for name in ("desk", "desk"):
        assert run(tmp_path, "token", "create", "--role", "agent", "--name", name).returncode == 0

    listed = run(tmp_path, "token", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert lines[0] == ["id", "name", "role", "agency", "created", "last used", "revoked"]
    assert lines[1][:4] == ["1", "scj", "agency", AGENCY] and lines[1][5:] == ["never", "-"]
    assert secret not in listed.stdout and "pj_" not in listed.stdout

    ambiguous = run(tmp_path, "token", "revoke", "desk")
    assert ambiguous.returncode == 2 and "编号 2, 3" in ambiguous.stderr
    unknown = run(tmp_path, "token", "revoke", "nobody")
    assert unknown.returncode == 2 and "找不到令牌 nobody" in unknown.stderr
    revoked = run(tmp_path, "token", "revoke", "scj")
    assert revoked.returncode == 0 and "revoked token 1 (scj, agency)" in revoked.stdout
    by_id = run(tmp_path, "token", "revoke", "2")
    assert by_id.returncode == 0 and "revoked token 2" in by_id.stdout
    again = run(tmp_path, "token", "revoke", "1")
    assert again.returncode == 0 and "already revoked" in again.stdout
    after = [line.split("\t") for line in run(tmp_path, "token", "list").stdout.splitlines()]
    assert [row[6] != "-" for row in after[1:]] == [True, True, False]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", after[1][6])
