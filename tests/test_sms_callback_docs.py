"""/api/openapi.json describes each provider's callbacks as its plug-in says, for every
registered provider: every route mounted under /sms/ is described, each with the `?key=` it
needs, Twilio's with its signature header and no other's, and the answer the document gives
is the one the route really gives (a connectivity probe with the key, at the provider's fake
city).

Bad inputs tried: none beyond the journeys' (the key's refusals: tests/test_sms_providers.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.composition import Services
from sms.providers.registry import PLUGINS
from tests.sms_drivers import Driver
from tests.sms_journey import city, client, driver
from tests.sms_support import KEY

__all__ = ["city", "client", "driver"]  # fixtures of tests/sms_journey.py used here

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDKs' aiohttp use


def mounted(client: TestClient) -> set[str]:
    return {
        resource.canonical
        for resource in client.app.router.resources()
        if resource.canonical.startswith("/sms/")
    }


async def document(client: TestClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_every_callback_is_described_as_its_plugin_says(
    city: Services, driver: Driver, client: TestClient
) -> None:
    plugin = PLUGINS[driver.name]
    paths = mounted(client)
    assert paths == set(plugin.callback_docs)
    assert paths >= set(plugin.callback_paths)
    described = (await document(client))["paths"]
    for path in paths:
        doc = plugin.callback_docs[path]
        post = described[path]["post"]
        assert post["summary"] == doc.summary
        assert post["description"] == f"Authenticated by {doc.auth}."
        assert "PINGJIA_SMS_CALLBACK_KEY" in doc.auth
        names = {p["name"]: p for p in post["parameters"]}
        assert names["key"]["in"] == "query" and names["key"]["required"] is True
        signed = {n for n, p in names.items() if p["in"] == "header"}
        assert signed == ({"X-Twilio-Signature"} if driver.name == "twilio" else set())
        assert ("Twilio" in post["description"]) == (driver.name == "twilio")
        assert list(post["requestBody"]["content"]) == [doc.body_type]
        assert post["responses"]["404"]["description"].startswith("a missing or wrong key")
        probe = described[path]["get"]
        assert [p["name"] for p in probe["parameters"]] == ["key"]
        assert "requestBody" not in probe


async def test_the_documented_answer_is_the_answer(
    city: Services, driver: Driver, client: TestClient
) -> None:
    described = (await document(client))["paths"]
    for path in mounted(client):
        responses = described[path]["get"]["responses"]
        [(status, answer)] = [(s, r) for s, r in responses.items() if s.startswith("2")]
        response = await client.get(f"{path}?key={KEY}")
        assert str(response.status) == status, path
        content = answer.get("content")
        if content is None:
            assert await response.read() == b""
            continue
        [(media_type, body)] = content.items()
        assert response.content_type == media_type
        real = await (response.json() if media_type == "application/json" else response.text())
        assert real == body["example"], path
