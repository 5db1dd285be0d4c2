"""API refusals keep their stable code and give the Chinese message of rating/words.py, written
as Chinese (not \\u escapes) like every successful answer. Bad inputs tried: a step the status
does not allow, an unknown route, a wrong method, a case that is not registered."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from pingjia.composition import Services
from tests import sqlite_app
from tests.test_tickets import bad_ticket

database_url = sqlite_app.database_url  # the app on SQLite only
client = sqlite_app.client


async def test_error_bodies_are_chinese_unescaped_with_their_codes(
    client: TestClient, services: Services
) -> None:
    token = await services.tokens.create("agent", "话务员", services.clock())
    headers = {"Authorization": f"Bearer {token}"}
    no = (await bad_ticket(client, {"agent": headers}))["ticket_no"]
    refused = await client.post(f"/api/v1/tickets/{no}/close", json={}, headers=headers)
    raw = await refused.text()
    assert refused.status == 409 and "\\u" not in raw
    assert json.loads(raw)["error"] == {
        "code": "illegal_transition",
        "message": "工单当前状态为「待转办」，不能办理「办结」；现在可以办理：转办。",
    }
    missing = await client.post(
        "/api/v1/ratings", json={"case_no": "C404", "level": 1}, headers=headers
    )
    assert missing.status == 404 and "\\u" not in await missing.text()
    assert (await missing.json())["error"] == {
        "code": "case_not_found",
        "message": "诉求 C404 未登记。",
    }
    nowhere = await client.get("/api/v1/nowhere", headers=headers)
    assert (await nowhere.json())["error"] == {
        "code": "not_found",
        "message": "没有这个地址：/api/v1/nowhere",
    }
    assert "\\u" not in await nowhere.text()
    wrong = await client.delete("/api/v1/services", headers=headers)
    assert wrong.status == 405
    assert (await wrong.json())["error"]["message"] == "/api/v1/services 不接受 DELETE 请求。"
