"""One Idempotency-Key, one request (issue 16.2), on SQLite and on PostgreSQL.

Bad inputs tried here: a key reused with another level for the same case, a key reused on
another case (it was processed as new), a key reused by another token, two different requests
racing with one key, a key of 101 characters, an empty key. A retry with the same body, its
fields in another order and spacing, still answers the first rating.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient

from pingjia.composition import Services
from rating.cases.models import Rating
from tests.test_api import agent, client, count, register  # noqa: F401 (fixtures)

CASE = "C2026112000001"


async def post(client: TestClient, headers: dict[str, str], body: dict[str, Any], key: str) -> Any:  # noqa: F811
    return await client.post(
        "/api/v1/ratings", json=body, headers={**headers, "Idempotency-Key": key}
    )


async def code_of(response: Any) -> str:
    return str((await response.json())["error"]["code"])


async def test_a_key_reused_with_another_body_is_refused(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    await register(client, agent)
    await register(client, agent, case_no="C2")
    first = await post(client, agent, {"case_no": CASE, "level": 2}, "k-1")
    assert first.status == 201, await first.text()
    rating_id = (await first.json())["evaluation"]["rating"]["id"]

    # The same request, fields reordered and spaced differently: a retry, answered the same.
    raw = json.dumps({"level": 2, "case_no": CASE}, indent=2)
    again = await client.post(
        "/api/v1/ratings",
        data=raw,
        headers={**agent, "Idempotency-Key": "k-1", "Content-Type": "application/json"},
    )
    assert again.status == 200 and (await again.json())["evaluation"]["rating"]["id"] == rating_id

    for body in ({"case_no": CASE, "level": 4, "reason": "慢"}, {"case_no": "C2", "level": 2}):
        response = await post(client, agent, body, "k-1")
        assert response.status == 422, await response.text()
        assert await code_of(response) == "idempotency_key_reused"
    other = await services.tokens.create("agent", "window-2", services.clock())
    response = await post(
        client, {"Authorization": f"Bearer {other}"}, {"case_no": "C2", "level": 1}, "k-1"
    )
    assert response.status == 422 and await code_of(response) == "idempotency_key_reused"

    assert await count(services, Rating) == 1
    evaluations = await (await client.get("/api/v1/evaluations", headers=agent)).json()
    assert {e["case_no"]: e["status"] for e in evaluations["items"]} == {
        CASE: "rated",
        "C2": "pending",
    }

    for key in ("x" * 101, ""):
        response = await post(client, agent, {"case_no": "C2", "level": 1}, key)
        assert response.status == 422 and await code_of(response) == "invalid_idempotency_key"
    assert await count(services, Rating) == 1


async def test_two_requests_racing_with_one_key_make_one_rating(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    await register(client, agent)
    await register(client, agent, case_no="C2")
    bodies = [{"case_no": CASE, "level": 1}, {"case_no": "C2", "level": 1}] * 3
    responses = await asyncio.gather(*(post(client, agent, b, "race") for b in bodies))
    statuses = sorted(r.status for r in responses)
    # One body won the key: its first try is 201, its repeats 200; the other body's are 422.
    assert statuses == [200, 200, 201, 422, 422, 422], statuses
    assert await count(services, Rating) == 1


async def test_openapi_documents_the_header(client: TestClient) -> None:  # noqa: F811
    document = await (await client.get("/api/openapi.json")).json()
    params = document["paths"]["/api/v1/ratings"]["post"]["parameters"]
    assert [p["name"] for p in params if p["in"] == "header"] == ["Idempotency-Key"]
