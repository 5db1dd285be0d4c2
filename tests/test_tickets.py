"""The ticket workflow (差评工单) through the API, on SQLite and on PostgreSQL.

Bad inputs tried here: a step by the wrong role (403), a step from the wrong status (409), a
ticket that does not exist (404), rectification without feedback, not adopting without
evidence, not adopting a Taishan rating about the matter (not appealable), an unknown body
field, a repeated 12345 callback, an extension dated before the deadline in force, a second
extension request while one waits, an extension decided twice, an extension decided by an agency.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.app import build_app
from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.outbox.models import OutboxItem

ROLES = ("agent", "agency", "bureau", "admin")
AGENCY = "台山市市场监督管理局"


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


@pytest.fixture
async def tokens(services: Services) -> dict[str, dict[str, str]]:
    headers = {}
    for role in ROLES:
        agency = AGENCY if role == "agency" else None  # agency tokens see their own tickets
        token = await services.tokens.create(role, f"{role}-1", services.clock(), agency=agency)
        headers[role] = {"Authorization": f"Bearer {token}"}
    return headers


async def bad_ticket(
    client: TestClient,
    tokens: dict[str, dict[str, str]],
    case_no: str = "C1",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Register a case and rate it 不满意: the ticket it opens."""
    service = {
        "case_no": case_no,
        "kind": "complaint",
        "phone": "13812345678",
        "completed_at": "2026-11-20T17:30:00+08:00",
        "agency": AGENCY,
    }
    response = await client.post("/api/v1/services", json=service, headers=tokens["agent"])
    assert response.status == 201, await response.text()
    rating = {"case_no": case_no, "level": 4, "tags": tags or ["staff_passive"], "reason": "慢"}
    response = await client.post("/api/v1/ratings", json=rating, headers=tokens["agent"])
    assert response.status == 201, await response.text()
    ticket = (await response.json())["ticket"]
    assert ticket["status"] == "new"
    return ticket  # type: ignore[no-any-return]


async def step(
    client: TestClient, headers: dict[str, str], ticket_no: str, path: str, body: Any = None
) -> Any:
    response = await client.post(
        f"/api/v1/tickets/{ticket_no}/{path}", json=body or {}, headers=headers
    )
    return response.status, await response.json()


async def test_ticket_walks_every_state_with_history(
    client: TestClient, tokens: dict[str, dict[str, str]], services: Services
) -> None:
    ticket = await bad_ticket(client, tokens)
    no = ticket["ticket_no"]
    walk = [
        ("agent", "dispatch", {"agency": AGENCY, "note": "转相关单位"}, "dispatched"),
        ("agency", "confirm", {"note": "回访属实"}, "confirmed"),
        ("agency", "start-rectify", {}, "rectifying"),
        ("agency", "rectify", {"feedback": "已约谈窗口人员并整改"}, "rectified"),
        ("agent", "close", {"note": "办结"}, "closed"),
    ]
    for role, path, body, expected in walk:
        status, answer = await step(client, tokens[role], no, path, body)
        assert status == 200, answer
        assert answer["status"] == expected
    response = await client.get(f"/api/v1/tickets/{no}", headers=tokens["bureau"])
    detail = await response.json()
    assert [(h["from_status"], h["to_status"]) for h in detail["history"]] == [
        ("new", "dispatched"),
        ("dispatched", "confirmed"),
        ("confirmed", "rectifying"),
        ("rectifying", "rectified"),
        ("rectified", "closed"),
    ]
    assert [h["role"] for h in detail["history"]] == [
        "agent",
        "agency",
        "agency",
        "agency",
        "agent",
    ]
    assert detail["history"][0]["data"] == {"agency": AGENCY}
    assert detail["feedback"] == "已约谈窗口人员并整改"
    assert detail["verdict"] == "confirmed" and detail["verified_on_time"] is True
    assert detail["actions"] == [] and detail["due_at"] is None
    # Taishan: call back within 10 working days of the rating (Fri 20 Nov 2026 → Fri 4 Dec).
    assert detail["deadlines"] == {"callback": "2026-12-04T23:59:59+08:00"}
    async with services.sessions() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.entity_id == no))
        ).scalars()
        actions = [a.action for a in audit]
        outbox = (await session.execute(select(OutboxItem).order_by(OutboxItem.id))).scalars()
        topics = [(o.topic, o.payload.get("status")) for o in outbox]
    assert actions == [
        "ticket.created",
        "ticket.dispatch",
        "ticket.confirm",
        "ticket.start_rectify",
        "ticket.rectify",
        "ticket.close",
    ]
    assert topics == [
        ("central.rating", None),
        ("central.ticket", "confirmed"),
        ("central.ticket", "rectified"),
        ("central.ticket", "closed"),
    ]


async def test_wrong_role_is_403_and_wrong_status_is_409(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    no = (await bad_ticket(client, tokens))["ticket_no"]
    status, answer = await step(client, tokens["agency"], no, "dispatch")
    assert status == 403 and answer["error"]["code"] == "forbidden"
    status, answer = await step(client, tokens["agent"], no, "close")
    assert status == 409 and answer["error"]["code"] == "illegal_transition"
    assert "现在可以办理：转办" in answer["error"]["message"]
    status, answer = await step(client, tokens["agency"], no, "rectify", {"feedback": "x"})
    assert status == 409
    status, answer = await step(client, tokens["agent"], "NOPE", "dispatch")
    assert status == 404 and answer["error"]["code"] == "ticket_not_found"
    status, answer = await step(client, tokens["agent"], no, "dispatch", {"colour": "red"})
    assert status == 422
    # Nothing above moved the ticket or wrote history.
    detail = await (await client.get(f"/api/v1/tickets/{no}", headers=tokens["agent"])).json()
    assert detail["status"] == "new" and detail["history"] == []
    assert (await step(client, tokens["agent"], no, "dispatch"))[0] == 200
    assert (await step(client, tokens["agent"], no, "dispatch"))[0] == 409
    status, answer = await step(client, tokens["agency"], no, "confirm")
    assert status == 200
    await step(client, tokens["agency"], no, "start-rectify")
    status, answer = await step(client, tokens["agency"], no, "rectify", {"feedback": "  "})
    assert status == 422


@pytest.mark.article("taishan", 22)
async def test_not_adopted_needs_evidence_and_an_appealable_rating(
    client: TestClient, tokens: dict[str, dict[str, str]], services: Services
) -> None:
    matter = (await bad_ticket(client, tokens, "C-matter", ["delayed"]))["ticket_no"]
    staff = (await bad_ticket(client, tokens, "C-staff", ["staff_passive"]))["ticket_no"]
    for no in (matter, staff):
        await step(client, tokens["agent"], no, "dispatch")
    evidence = {"evidence": "通话录音显示评价人恶意差评", "note": "申诉"}
    status, answer = await step(client, tokens["agency"], staff, "not-adopt", evidence)
    assert status == 403  # the bureau rules on appeals
    status, answer = await step(client, tokens["bureau"], staff, "not-adopt", {})
    assert status == 422
    # Taishan Art. 22: a rating about the matter (出现延期办结) cannot be appealed.
    status, answer = await step(client, tokens["bureau"], matter, "not-adopt", evidence)
    assert status == 409 and answer["error"]["code"] == "not_appealable"
    status, answer = await step(client, tokens["bureau"], staff, "not-adopt", evidence)
    assert status == 200 and answer["status"] == "not_adopted"
    assert answer["verdict"] == "not_adopted"
    assert answer["history"][-1]["data"]["evidence"] == evidence["evidence"]
    status, answer = await step(client, tokens["bureau"], staff, "close")
    assert status == 200 and answer["status"] == "closed"
    # The rating is kept.
    response = await client.get(
        "/api/v1/evaluations", params={"case_no": "C-staff"}, headers=tokens["agent"]
    )
    assert (await response.json())["items"][0]["rating"]["level"] == 4


async def test_extension_granted_moves_the_deadline_in_force(
    client: TestClient, tokens: dict[str, dict[str, str]], services: Services, clock: Any
) -> None:
    no = (await bad_ticket(client, tokens))["ticket_no"]
    await step(client, tokens["agent"], no, "dispatch")
    too_early = {"new_due_at": "2026-12-01T18:00:00+08:00", "reason": "需现场核查"}
    status, answer = await step(client, tokens["agency"], no, "extensions", too_early)
    assert status == 422 and answer["error"]["code"] == "extension_not_later"
    ask = {"new_due_at": "2026-12-11T18:00:00+08:00", "reason": "需现场核查"}
    status, answer = await step(client, tokens["agent"], no, "extensions", ask)
    assert status == 403
    status, answer = await step(client, tokens["agency"], no, "extensions", ask)
    assert status == 201, answer
    extension = answer["extensions"][0]
    assert extension["status"] == "requested"
    status, answer = await step(client, tokens["agency"], no, "extensions", ask)
    assert status == 409 and answer["error"]["code"] == "extension_pending"
    path = f"extensions/{extension['id']}"
    assert (await step(client, tokens["agency"], no, f"{path}/grant"))[0] == 403
    status, answer = await step(client, tokens["bureau"], no, f"{path}/grant", {"note": "同意"})
    assert status == 200, answer
    assert (await step(client, tokens["bureau"], no, f"{path}/refuse"))[0] == 409
    # Both deadlines are kept and shown; the one in force is the granted date.
    assert answer["deadlines"]["callback"] == "2026-12-04T23:59:59+08:00"
    assert answer["deadlines_in_force"]["callback"] == "2026-12-11T18:00:00+08:00"
    assert answer["due_at"] == "2026-12-11T18:00:00+08:00"
    assert [h["action"] for h in answer["history"]][-2:] == [
        "extension_requested",
        "extension_granted",
    ]
    clock.now = clock.now.replace(year=2026, month=12, day=13)  # two days late, not nine
    detail = await (await client.get(f"/api/v1/tickets/{no}", headers=tokens["agent"])).json()
    assert detail["overdue_days"] == 2
    overdue = await client.get(
        "/api/v1/tickets", params={"overdue": "true"}, headers=tokens["agent"]
    )
    assert [t["ticket_no"] for t in (await overdue.json())["items"]] == [no]


async def test_list_filters(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    first = (await bad_ticket(client, tokens, "C1"))["ticket_no"]
    second = (await bad_ticket(client, tokens, "C2"))["ticket_no"]
    await step(client, tokens["agent"], second, "dispatch", {"agency": "台山市人社局"})

    async def listed(**params: str) -> list[str]:
        response = await client.get("/api/v1/tickets", params=params, headers=tokens["bureau"])
        assert response.status == 200, await response.text()
        return [t["ticket_no"] for t in (await response.json())["items"]]

    assert await listed() == [first, second]
    assert await listed(status="new") == [first]
    assert await listed(agency="台山市人社局") == [second]
    assert await listed(case_no="C2") == [second]
    assert await listed(overdue="false") == [first, second]
    assert await listed(overdue="true") == []
    assert await listed(due_before="2026-12-05T00:00:00+08:00") == [first, second]
    assert await listed(due_before="2026-12-01T00:00:00+08:00") == []
    response = await client.get(
        "/api/v1/tickets", params={"status": "lost"}, headers=tokens["agent"]
    )
    assert response.status == 422


async def test_ticket_system_callback_applies_each_event_once(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    no = (await bad_ticket(client, tokens))["ticket_no"]
    update = {"event_id": "12345-ev-1", "action": "dispatch", "agency": AGENCY}
    path = f"/api/v1/bridge/tickets/{no}/updates"
    for _ in range(2):
        response = await client.post(path, json=update, headers=tokens["admin"])
        assert response.status == 200, await response.text()
    detail = await response.json()
    assert detail["status"] == "dispatched" and len(detail["history"]) == 1
    assert detail["history"][0]["actor"] == "ticket-system:admin-1"
    response = await client.post(path, json=update, headers=tokens["agent"])
    assert response.status == 403
