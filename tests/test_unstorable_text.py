"""Text no database can store (NUL, lone surrogates) is refused at every edge (issue 16.1).

PostgreSQL refuses such text with CharacterNotInRepertoireError (a 500 before this guard);
SQLite stored it. Both databases must now answer the same clear 4xx and store nothing.

Bad inputs tried here: a NUL in a case's agency, matter and agent_id, in a rating's reason
and tags, as a lone surrogate (JSON's \\ud800) in a reason and in a field name, in a query's
case_no, in a ticket number in the path; on the rating page a NUL in the reason and in the
token; in the console a NUL in a form field and in a query; a NUL in a signed Twilio reply;
a NUL in an AGI variable and in the agent of an AGI request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ivr.agi.protocol import ScriptRequest, parse_environment
from ivr.flows.cases import requested_cases
from pingjia.app import build_app
from pingjia.composition import Services
from rating.cases.models import Case, Rating
from rating.errors import InvalidInput
from rating.text import check_json, unstorable
from sms.storage.models import SmsInbound
from tests.fakes.clock import FakeClock
from tests.sms_support import PHONE, SENDER, SID, messages
from tests.test_api import agent, count, register, service_body  # noqa: F401 (fixture)
from tests.test_console import raw_tokens, sign_in  # noqa: F401 (fixture)
from tests.test_sms_page import link_path, open_form
from tests.test_sms_webhooks import INBOUND, post_signed

NUL = "\x00"
SURROGATE = "\ud800"


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


def raw_json(body: dict[str, Any]) -> bytes:
    # json.dumps escapes NUL as \u0000 and a lone surrogate as \ud800, as a client would.
    return json.dumps(body).encode()


async def refused(response: Any) -> dict[str, Any]:
    assert response.status == 422, await response.text()
    error: dict[str, Any] = (await response.json())["error"]
    return error


async def test_api_refuses_unstorable_text_everywhere(
    client: TestClient,
    agent: dict[str, str],  # noqa: F811
    services: Services,
) -> None:
    headers = {**agent, "Content-Type": "application/json"}
    for field in ("agency", "matter", "agent_id"):
        body = service_body(f"N-{field}", **{field: f"台山{NUL}局"})
        error = await refused(
            await client.post("/api/v1/services", data=raw_json(body), headers=headers)
        )
        assert error["code"] == "unstorable_text" and f"body.{field}" in error["message"]
    assert await count(services, Case) == 0

    await register(client, agent, case_no="C1")
    bad_ratings = [
        {"case_no": "C1", "level": 4, "reason": f"慢{NUL}"},
        {"case_no": "C1", "level": 4, "reason": f"慢{SURROGATE}"},
        {"case_no": "C1", "level": 4, "tags": [f"staff_passive{NUL}"]},
        {"case_no": "C1", "level": 4, f"reason{SURROGATE}": "慢"},
    ]
    for body in bad_ratings:
        error = await refused(
            await client.post("/api/v1/ratings", data=raw_json(body), headers=headers)
        )
        assert error["code"] == "unstorable_text", error
    assert await count(services, Rating) == 0

    error = await refused(await client.get("/api/v1/evaluations?case_no=C1%00", headers=agent))
    assert error["code"] == "unstorable_text" and "case_no" in error["message"]
    error = await refused(await client.get("/api/v1/tickets/0001%00", headers=agent))
    assert error["code"] == "unstorable_text" and "ticket_no" in error["message"]

    # The same rating without the NUL is taken: nothing was half-written before.
    good = {"case_no": "C1", "level": 4, "reason": "慢"}
    response = await client.post("/api/v1/ratings", json=good, headers=agent)
    assert response.status == 201, await response.text()


async def test_rating_page_shows_a_page_not_json(
    services: Services, clock: FakeClock, client: TestClient
) -> None:
    path = await link_path(services, clock)
    csrf = await open_form(client, path)
    response = await client.post(path, data={"csrf": csrf, "level": "4", "reason": f"慢{NUL}"})
    assert response.status == 422 and response.content_type == "text/html"
    html = await response.text()
    assert "无法识别的字符" in html and NUL not in html
    assert await count(services, Rating) == 0
    unknown = await client.get("/r/abc%00def")
    assert unknown.status == 404 and "链接无效" in await unknown.text()
    # The citizen removes the character and the rating is taken.
    response = await client.post(path, data={"csrf": csrf, "level": "2", "reason": "好"})
    assert response.status == 200 and "感谢您的评价" in await response.text()


async def test_console_refuses_unstorable_form_fields_and_queries(
    client: TestClient,
    raw_tokens: dict[str, str],  # noqa: F811
) -> None:
    csrf = await sign_in(client, raw_tokens["agent"])
    response = await client.get("/console/tickets?status=new%00")
    assert response.status == 422 and "无法保存的字符" in await response.text()
    response = await client.post(
        "/console/tickets/0001/act/dispatch", data={"csrf": csrf, "note": f"转{NUL}办"}
    )
    assert response.status == 422 and response.content_type == "text/html"
    assert "无法保存的字符" in await response.text()


async def test_twilio_reply_with_a_nul_is_refused_and_not_stored(
    tw: Services, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(build_app(tw))
    form = {
        "MessageSid": "SM100",
        "AccountSid": SID,
        "From": "+86" + PHONE,
        "To": SENDER,
        "Body": f"4{NUL}",
        "NumMedia": "0",
    }
    response = await post_signed(client, INBOUND, form)
    assert response.status == 400
    assert await count(tw, SmsInbound) == 0 and await messages(tw) == []


def test_agi_variables_with_a_nul_are_dropped() -> None:
    block = (
        b"agi_request: agi://127.0.0.1/rating\n"
        b"agi_network_script: rating\n"
        b"agi_calleridname: Bad\x00Name\n"
        b"agi_uniqueid: 1700000000.1\n"
    )
    env = parse_environment(block)
    assert "agi_calleridname" not in env and env["agi_uniqueid"] == "1700000000.1"
    cases = requested_cases(ScriptRequest("rating", {"case": ["C1"], "agent": [f"A1{NUL}"]}, ()))
    assert cases.case_nos == ("C1",) and cases.agent_id is None


def test_unstorable_names_what_and_where() -> None:
    assert unstorable("台山市") is None and unstorable("") is None
    assert unstorable(f"ab{NUL}") == "第 3 个字符是空字符（NUL）"
    assert unstorable(f"{SURROGATE}x") == "第 1 个字符是不成对的代理码位 U+D800"
    assert unstorable("😀") is None  # a real astral character is fine
    check_json({"a": [1, None, {"b": "ok"}]})
    with pytest.raises(InvalidInput, match=r"body\.a\[1\]\.b"):
        check_json({"a": [1, {"b": NUL}]})
