"""Agency-scoped tokens: an agency sees and acts on its own agency's tickets only.

Through the API on SQLite and PostgreSQL, and `pingjia token create` as a user runs it. Bad
inputs tried: another agency's ticket (404 on read, on each action and on an extension, and
nothing changes), a list filtered by another agency (empty), an agency token made without an
agency (403 with what to do), `--agency` on a role that is not agency, `--role agency` without
`--agency` on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.app import build_app
from pingjia.composition import Services
from rating.errors import InvalidInput
from tests.test_cli import run

OURS = "台山市市场监督管理局"
THEIRS = "台山市人力资源和社会保障局"


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ticket_for(client: TestClient, agent: dict[str, str], case_no: str, agency: str) -> str:
    service = {
        "case_no": case_no,
        "kind": "complaint",
        "phone": "13812345678",
        "completed_at": "2026-11-20T17:30:00+08:00",
        "agency": agency,
    }
    assert (await client.post("/api/v1/services", json=service, headers=agent)).status == 201
    rating = {"case_no": case_no, "level": 4, "tags": ["staff_passive"], "reason": "慢"}
    response = await client.post("/api/v1/ratings", json=rating, headers=agent)
    no: str = (await response.json())["ticket"]["ticket_no"]
    dispatched = await client.post(f"/api/v1/tickets/{no}/dispatch", json={}, headers=agent)
    assert dispatched.status == 200
    return no


async def test_agency_token_sees_and_acts_on_its_own_tickets_only(
    client: TestClient, services: Services
) -> None:
    now = services.clock()
    agent = bearer(await services.tokens.create("agent", "desk", now))
    ours = bearer(await services.tokens.create("agency", "scj", now, agency=OURS))
    mine = await ticket_for(client, agent, "C1", OURS)
    other = await ticket_for(client, agent, "C2", THEIRS)

    listed = await (await client.get("/api/v1/tickets", headers=ours)).json()
    assert [t["ticket_no"] for t in listed["items"]] == [mine]
    asked = await client.get("/api/v1/tickets", params={"agency": THEIRS}, headers=ours)
    assert (await asked.json())["items"] == []
    everything = await (await client.get("/api/v1/tickets", headers=agent)).json()
    assert len(everything["items"]) == 2

    assert (await client.get(f"/api/v1/tickets/{mine}", headers=ours)).status == 200
    hidden = await client.get(f"/api/v1/tickets/{other}", headers=ours)
    assert hidden.status == 404 and (await hidden.json())["error"]["code"] == "ticket_not_found"
    for path, body in (
        ("confirm", {}),
        ("extensions", {"new_due_at": "2027-01-30T18:00:00+08:00", "reason": "需要调查"}),
    ):
        response = await client.post(f"/api/v1/tickets/{other}/{path}", json=body, headers=ours)
        assert response.status == 404, path
    still = await (await client.get(f"/api/v1/tickets/{other}", headers=agent)).json()
    assert still["status"] == "dispatched" and still["extensions"] == []
    confirmed = await client.post(f"/api/v1/tickets/{mine}/confirm", json={}, headers=ours)
    assert confirmed.status == 200 and (await confirmed.json())["status"] == "confirmed"


async def test_agency_token_without_agency_is_refused(
    client: TestClient, services: Services
) -> None:
    now = services.clock()
    legacy = bearer(await services.tokens.create("agency", "old", now))
    response = await client.get("/api/v1/tickets", headers=legacy)
    assert response.status == 403
    assert "没有指定单位" in (await response.json())["error"]["message"]
    with pytest.raises(InvalidInput, match="只有承办单位令牌可以指定单位"):
        await services.tokens.create("bureau", "b", now, agency=OURS)


def test_cli_agency_token(tmp_path: Path) -> None:
    missing = run(tmp_path, "token", "create", "--role", "agency", "--name", "scj")
    assert missing.returncode == 2 and "--role agency needs --agency" in missing.stderr
    # No case names OURS in this empty database: --force (tests/test_token_admin.py refuses).
    made = run(
        tmp_path,
        "token",
        "create",
        "--role",
        "agency",
        "--name",
        "scj",
        "--agency",
        OURS,
        "--force",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("pj_")
    wrong = run(tmp_path, "token", "create", "--role", "agent", "--name", "x", "--agency", OURS)
    assert wrong.returncode == 2 and "只有承办单位令牌可以指定单位" in wrong.stderr
