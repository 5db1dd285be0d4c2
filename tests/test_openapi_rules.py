"""The OpenAPI document says what the server accepts, where the fuzz run (tests/api_fuzz.py,
`positive_data_acceptance`) found it did not: each body below is validated against the served
document and sent, and the two must agree.

Tried: a level written 2.0 (JSON's one kind of number), true, "2" and 2.5; for every level, no
tag, its own tag, another level's tag, an empty tag, and a reason absent, empty, blank or
given (the profile's tags per level and the levels that need a tag or a reason); the SMS
callbacks' parameters (the `?key=` every one needs, Twilio's signature on Twilio's only).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jsonschema_rs import Draft202012Validator

from pingjia.api.profile_doc import rating_rules
from pingjia.composition import Services
from rating.policy.loader import load_profile
from tests.test_api import agent, client, register  # noqa: F401  (fixtures used below)

REASONS: list[str | None] = [None, "", "   ", "等了很久"]


async def rating_schema(client: TestClient) -> Draft202012Validator:  # noqa: F811
    document = await (await client.get("/api/openapi.json")).json()
    schema = document["components"]["schemas"]["RatingIn"]
    return Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("level", "accepted"), [(2.0, True), (5.0, True), (True, False), ("2", False), (2.5, False)]
)
async def test_a_level_is_any_json_integer(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    level: Any,
    accepted: bool,
) -> None:
    await register(client, agent)
    body = {"case_no": "C2026112000001", "level": level, "reason": "等了很久"}
    assert (await rating_schema(client)).is_valid(body) is accepted
    response = await client.post("/api/v1/ratings", json=body, headers=agent)
    assert response.status == (201 if accepted else 422), await response.text()
    if accepted:
        assert (await response.json())["evaluation"]["rating"]["level"] == int(level)


def bodies(services: Services) -> list[dict[str, Any]]:
    """Every level with tags (none, its own, another level's, empty) and reasons."""
    profile = services.profile
    out: list[dict[str, Any]] = []
    for level in range(1, 6):
        own = [t.code for t in profile.tags_for(level)][:1]
        other = [t.code for t in profile.tags_for(5 if level < 4 else 1)][:1]
        for tags in ([], own, other, [""]):
            for reason in REASONS:
                body: dict[str, Any] = {"level": level, "tags": tags}
                if reason is not None:
                    body["reason"] = reason
                out.append(body)
    return out


async def test_tags_and_reasons_as_the_document_says(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    schema = await rating_schema(client)
    disagree = []
    tried = bodies(services)
    for n, body in enumerate(tried):
        case_no = f"C{n:04d}"
        await register(client, agent, case_no=case_no)
        sent = {"case_no": case_no, **body}
        response = await client.post("/api/v1/ratings", json=sent, headers=agent)
        assert response.status in (201, 422), await response.text()
        if schema.is_valid(sent) != (response.status == 201):
            disagree.append((sent, response.status, (await response.json()).get("error")))
    assert not disagree, disagree
    # Both answers happen: the grid holds valid and refused bodies alike.
    valid = sum(schema.is_valid({"case_no": "C1", **b}) for b in tried)
    assert 0 < valid < len(tried)


def test_the_rules_follow_the_profile() -> None:
    # 三门峡 offers its own tags and needs no reason at any level; 台山 needs one at 4 and 5.
    for name in ("taishan", "sanmenxia"):
        profile = load_profile(name)
        branches = rating_rules(profile)["oneOf"]
        assert [b["properties"]["level"]["const"] for b in branches] == [1, 2, 3, 4, 5]
        for level, branch in enumerate(branches, start=1):
            codes = [t.code for t in profile.tags_for(level)]
            tags = branch["properties"]["tags"]
            assert tags == ({"items": {"enum": codes}} if codes else {"maxItems": 0})
            assert ("anyOf" in branch) is profile.reason_required(level)


async def test_sms_callbacks_are_documented_as_guarded(
    client: TestClient,  # noqa: F811
) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    callbacks = {p: ops for p, ops in document["paths"].items() if p.startswith("/sms/")}
    assert callbacks, "the console provider's reply route is documented"
    for path, operations in callbacks.items():
        for method, operation in operations.items():
            names = {(p["in"], p["name"]): p["required"] for p in operation["parameters"]}
            assert names.get(("query", "key")) is True, (path, method)
            signed = ("header", "X-Twilio-Signature") in names
            assert signed is (path.startswith("/sms/twilio/") and method == "post"), path
    reply = callbacks["/sms/console/reply"]["post"]["requestBody"]["content"]
    assert reply["application/json"]["schema"]["required"] == ["id", "from", "body"]


@pytest.mark.parametrize("key", ["", "k", "k\t", "k k", "k" * 100, "k" * 101])
async def test_an_idempotency_key_as_the_document_says(
    client: TestClient,  # noqa: F811
    agent: dict[str, str],  # noqa: F811
    key: str,
) -> None:
    await register(client, agent)
    document = await (await client.get("/api/openapi.json")).json()
    parameters = document["paths"]["/api/v1/ratings"]["post"]["parameters"]
    (schema,) = [p["schema"] for p in parameters if p["name"] == "Idempotency-Key"]
    body = {"case_no": "C2026112000001", "level": 1}
    response = await client.post(
        "/api/v1/ratings", json=body, headers={**agent, "Idempotency-Key": key}
    )
    answer = await response.json()
    refused = response.status == 422 and answer["error"]["code"] == "invalid_idempotency_key"
    assert Draft202012Validator(schema).is_valid(key) is not refused, answer
