"""The HTTP API end to end over aiohttp's test client, on SQLite and on PostgreSQL.

Bad inputs tried here: broken JSON, an empty body, a JSON array, a missing field, an unknown
field, a bad phone, a timestamp without offset, an unknown kind, an oversized body, no token,
an unknown token, a forbidden role, a level out of range, an unknown tag, a missing reason, an
unknown case, a repeated query parameter, an unknown query parameter, an unknown route, a wrong
method.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from pingjia.app import build_app
from pingjia.composition import Services
from rating.cases.models import Case, Evaluation, Rating
from rating.outbox.models import OutboxItem
from rating.tickets.models import Ticket

PHONE = "13812345678"


def service_body(case_no: str = "C2026112000001", **overrides: Any) -> dict[str, Any]:
    body = {
        "case_no": case_no,
        "kind": "complaint",
        "phone": PHONE,
        "completed_at": "2026-11-20T17:30:00+08:00",
        "agency": "台山市市场监督管理局",
        "agent_id": "A017",
        "matter": "食品安全投诉",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


@pytest.fixture
async def agent(services: Services) -> dict[str, str]:
    token = await services.tokens.create("agent", "case-system", services.clock())
    return {"Authorization": f"Bearer {token}"}


async def count(services: Services, model: type[Any]) -> int:
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def register(client: TestClient, agent: dict[str, str], **overrides: Any) -> Any:
    response = await client.post("/api/v1/services", json=service_body(**overrides), headers=agent)
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def test_register_is_idempotent_on_case_no(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    first = await client.post("/api/v1/services", json=service_body(), headers=agent)
    assert first.status == 201
    created = await first.json()
    assert created["status"] == "pending"
    assert created["phone"] == "138****5678"
    assert created["rating"] is None
    # 7 natural days from completion (Taishan Art. 17), reminder 24 h later (Art. 13).
    assert created["default_due_at"].startswith("2026-11-27T09:30:00")
    assert created["reminder_due_at"].startswith("2026-11-21T09:30:00")

    again = await client.post("/api/v1/services", json=service_body(), headers=agent)
    assert again.status == 200
    assert (await again.json())["id"] == created["id"]
    assert await count(services, Case) == 1
    assert await count(services, Evaluation) == 1

    listed = await client.get(
        "/api/v1/evaluations", params={"case_no": created["case_no"]}, headers=agent
    )
    assert listed.status == 200
    items = (await listed.json())["items"]
    assert [item["id"] for item in items] == [created["id"]]


async def test_concurrent_registration_makes_one_evaluation(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/v1/services", json=service_body(), headers=agent) for _ in range(6))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 1 and statuses.count(200) == 5
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    assert await count(services, Evaluation) == 1


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "empty_body"),
        (b"[1, 2]", 400, "invalid_json"),
        (
            json.dumps({k: v for k, v in service_body().items() if k != "phone"}).encode(),
            422,
            "invalid_input",
        ),
        (json.dumps(service_body(colour="red")).encode(), 422, "invalid_input"),
        (json.dumps(service_body(phone="12345")).encode(), 422, "invalid_phone"),
        (json.dumps(service_body(phone="138-1234-567x")).encode(), 422, "invalid_phone"),
        (
            json.dumps(service_body(completed_at="2026-11-20T17:30:00")).encode(),
            422,
            "invalid_input",
        ),
        (json.dumps(service_body(completed_at="yesterday")).encode(), 422, "invalid_input"),
        (json.dumps(service_body(kind="praise")).encode(), 422, "invalid_input"),
        (json.dumps(service_body(case_no="")).encode(), 422, "invalid_input"),
        (json.dumps(service_body(case_no="C 1; drop")).encode(), 422, "invalid_input"),
    ],
)
async def test_bad_service_input_is_a_json_error_and_writes_nothing(
    client: TestClient,
    agent: dict[str, str],
    services: Services,
    raw: bytes,
    status: int,
    code: str,
) -> None:
    response = await client.post(
        "/api/v1/services", data=raw, headers={**agent, "Content-Type": "application/json"}
    )
    assert response.status == status
    body = await response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert PHONE not in await response.text()
    assert await count(services, Case) == 0


async def test_oversized_body_is_413(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    big = service_body(matter="x" * (services.settings.max_body_bytes + 10))
    response = await client.post("/api/v1/services", json=big, headers=agent)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"
    assert await count(services, Case) == 0


async def test_tokens_and_roles(client: TestClient, services: Services) -> None:
    missing = await client.post("/api/v1/services", json=service_body())
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "unauthorized"
    wrong = await client.get("/api/v1/evaluations", headers={"Authorization": "Bearer pj_nope"})
    assert wrong.status == 401
    bureau = await services.tokens.create("bureau", "bureau", services.clock())
    headers = {"Authorization": f"Bearer {bureau}"}
    forbidden = await client.post("/api/v1/services", json=service_body(), headers=headers)
    assert forbidden.status == 403
    assert (await forbidden.json())["error"]["code"] == "forbidden"
    assert (await client.get("/api/v1/evaluations", headers=headers)).status == 200


async def test_unknown_routes_methods_and_queries_are_json(
    client: TestClient, agent: dict[str, str]
) -> None:
    nothing = await client.get("/api/v1/nothing", headers=agent)
    assert nothing.status == 404 and (await nothing.json())["error"]["code"] == "not_found"
    wrong = await client.delete("/api/v1/services", headers=agent)
    assert wrong.status == 405 and (await wrong.json())["error"]["code"] == "method_not_allowed"
    twice = await client.get("/api/v1/evaluations?case_no=a&case_no=b", headers=agent)
    assert twice.status == 422
    unknown = await client.get("/api/v1/evaluations?colour=red", headers=agent)
    assert unknown.status == 422
    limit = await client.get("/api/v1/evaluations?limit=0", headers=agent)
    assert limit.status == 422


async def test_bad_rating_opens_a_ticket_and_a_second_rating_is_409(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    await register(client, agent)
    tag = services.profile.tags_for(4)[0]
    response = await client.post(
        "/api/v1/ratings",
        json={"case_no": "C2026112000001", "level": 4, "tags": [tag.code], "reason": "等了很久"},
        headers=agent,
    )
    assert response.status == 201, await response.text()
    result = await response.json()
    assert result["adopted"] is True
    rating = result["evaluation"]["rating"]
    assert (rating["level"], rating["label"], rating["channel"]) == (4, "不满意", "api")
    assert rating["score"] == services.profile.score(4)
    assert rating["tag_texts"] == [tag.text]
    assert result["evaluation"]["status"] == "rated"
    ticket = result["ticket"]
    assert ticket["status"] == "new" and ticket["level"] == 4
    assert ticket["ticket_no"].startswith("2611")
    assert set(ticket["deadlines"]) == {r.name for r in services.profile.ticket_deadlines}
    assert await count(services, Ticket) == 1
    assert await count(services, OutboxItem) == 1

    second = await client.post(
        "/api/v1/ratings", json={"case_no": "C2026112000001", "level": 1}, headers=agent
    )
    assert second.status == 409
    assert (await second.json())["error"]["code"] == "already_rated"
    listed = await client.get("/api/v1/evaluations?case_no=C2026112000001", headers=agent)
    evaluation = (await listed.json())["items"][0]
    assert evaluation["rating"]["level"] == 4
    assert [a["level"] for a in evaluation["attempts"]] == [1]
    assert all(a["adopted"] is False for a in evaluation["attempts"])
    assert await count(services, Ticket) == 1
    assert await count(services, OutboxItem) == 1


async def test_good_rating_opens_no_ticket(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    await register(client, agent)
    response = await client.post(
        "/api/v1/ratings", json={"case_no": "C2026112000001", "level": 1}, headers=agent
    )
    assert response.status == 201
    assert (await response.json())["ticket"] is None
    assert await count(services, Ticket) == 0


async def test_concurrent_ratings_adopt_exactly_one(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    await register(client, agent)
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/ratings", json={"case_no": "C2026112000001", "level": level}, headers=agent
            )
            for level in (1, 2, 3, 1, 2, 3)
        )
    )
    statuses = [r.status for r in responses]
    assert statuses.count(201) == 1 and statuses.count(409) == 5
    async with services.sessions() as session:
        adopted = (await session.execute(select(func.count()).where(Rating.adopted))).scalar_one()
    assert adopted == 1
    assert await count(services, Rating) == 6


async def test_idempotency_key_replays_the_same_rating(
    client: TestClient, agent: dict[str, str], services: Services
) -> None:
    await register(client, agent)
    headers = {**agent, "Idempotency-Key": "window-7-42"}
    body = {"case_no": "C2026112000001", "level": 2}
    first = await client.post("/api/v1/ratings", json=body, headers=headers)
    again = await client.post("/api/v1/ratings", json=body, headers=headers)
    assert (first.status, again.status) == (201, 200)
    assert (await first.json())["evaluation"]["rating"]["id"] == (await again.json())["evaluation"][
        "rating"
    ]["id"]
    assert await count(services, Rating) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"case_no": "C2026112000001", "level": 6}, 422, "invalid_input"),
        ({"case_no": "C2026112000001", "level": 0}, 422, "invalid_input"),
        ({"case_no": "C2026112000001", "level": "4"}, 422, "invalid_input"),
        ({"case_no": "C2026112000001", "level": 5}, 422, "reason_required"),
        ({"case_no": "C2026112000001", "level": 5, "reason": "   "}, 422, "reason_required"),
        ({"case_no": "C2026112000001", "level": 4, "tags": ["no-such-tag"]}, 422, "invalid_tag"),
        ({"case_no": "C2026112000001", "level": 1, "channel": "system"}, 422, "invalid_input"),
        ({"case_no": "NOPE", "level": 1}, 404, "case_not_found"),
    ],
)
async def test_bad_ratings_are_refused_and_write_nothing(
    client: TestClient,
    agent: dict[str, str],
    services: Services,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    await register(client, agent)
    response = await client.post("/api/v1/ratings", json=body, headers=agent)
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code
    assert await count(services, Rating) == 0


async def test_openapi_health_and_metrics(client: TestClient, agent: dict[str, str]) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/api/v1/services",
        "/api/v1/evaluations",
        "/api/v1/ratings",
        "/healthz",
        "/metrics",
    ):
        assert path in doc["paths"], path
    service_schema = doc["components"]["schemas"]["ServiceIn"]
    assert set(service_schema["required"]) == {"case_no", "kind", "phone", "completed_at"}
    assert service_schema["additionalProperties"] is False
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    await register(client, agent)
    metrics = await (await client.get("/metrics")).text()
    assert "pingjia_evaluations_registered_total 1.0" in metrics
    assert (
        'pingjia_http_requests_total{method="POST",route="/api/v1/services",status="201"}'
        in metrics
    )
