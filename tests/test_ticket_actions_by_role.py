"""A ticket's `actions` are the caller's: the steps its status allows that the caller's role may
take and the profile permits; the others are in `unavailable_actions` with the refusal's code
and Chinese reason. The console offers the same (rating.tickets.rules.available_actions).

Bad inputs tried: each role taking each step it is not offered (refused, as the reason said,
and the ticket unchanged); a bureau not adopting a Taishan rating about the matter.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests import sqlite_app
from tests.test_tickets import bad_ticket, step, tokens  # noqa: F401

database_url = sqlite_app.database_url  # the app on SQLite only
client = sqlite_app.client

PATHS = {"dispatch": "dispatch", "confirm": "confirm", "not_adopt": "not-adopt"}
BODIES = {"not_adopt": {"evidence": "通话录音显示评价人恶意差评"}}


async def seen_by(client: TestClient, headers: dict[str, str], no: str) -> dict[str, Any]:
    detail: dict[str, Any] = await (
        await client.get(f"/api/v1/tickets/{no}", headers=headers)
    ).json()
    listed = await (await client.get("/api/v1/tickets", headers=headers)).json()
    same = [t for t in listed["items"] if t["ticket_no"] == no]
    assert [(t["actions"], t["unavailable_actions"]) for t in same] == [
        (detail["actions"], detail["unavailable_actions"])
    ]
    return detail


def offered(detail: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    return detail["actions"], {u["action"]: u["code"] for u in detail["unavailable_actions"]}


async def test_each_role_is_offered_only_what_it_can_take(
    client: TestClient,
    tokens: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    no = (await bad_ticket(client, tokens))["ticket_no"]
    new = {role: offered(await seen_by(client, h, no)) for role, h in tokens.items()}
    assert new == {
        "agent": (["dispatch"], {}),
        "agency": ([], {"dispatch": "role_not_allowed"}),
        "bureau": ([], {"dispatch": "role_not_allowed"}),
        "admin": (["dispatch"], {}),
    }
    detail = await seen_by(client, tokens["agency"], no)
    assert detail["unavailable_actions"] == [
        {
            "action": "dispatch",
            "label": "转办",
            "code": "role_not_allowed",
            "message": "承办单位不能办理「转办」；可以办理的是：管理员、话务员。",
        }
    ]
    assert (await step(client, tokens["agent"], no, "dispatch"))[0] == 200
    dispatched = {role: offered(await seen_by(client, h, no)) for role, h in tokens.items()}
    assert dispatched == {
        "agent": (["confirm"], {"not_adopt": "role_not_allowed"}),
        "agency": (["confirm"], {"not_adopt": "role_not_allowed"}),
        "bureau": (["not_adopt"], {"confirm": "role_not_allowed"}),
        "admin": (["confirm", "not_adopt"], {}),
    }
    # What a role is not offered, it cannot do: refused, and the ticket stays as it was.
    for role, (_, refused) in dispatched.items():
        for action in refused:
            status, answer = await step(client, tokens[role], no, PATHS[action], BODIES.get(action))
            assert status == 403, (role, action, answer)
    after = await seen_by(client, tokens["admin"], no)
    assert after["status"] == "dispatched" and len(after["history"]) == 1


async def test_a_rating_the_profile_never_lets_be_appealed_offers_no_appeal(
    client: TestClient,
    tokens: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    # Taishan Art. 22: only ratings about staff may be not adopted; 出现延期办结 is the matter.
    no = (await bad_ticket(client, tokens, "C-matter", ["delayed"]))["ticket_no"]
    assert (await step(client, tokens["agent"], no, "dispatch"))[0] == 200
    for role in ("bureau", "admin"):
        detail = await seen_by(client, tokens[role], no)
        assert "not_adopt" not in detail["actions"]
        (why,) = [u for u in detail["unavailable_actions"] if u["action"] == "not_adopt"]
        assert why["code"] == "not_appealable" and "工作人员" in why["message"], why
        status, answer = await step(client, tokens[role], no, "not-adopt", BODIES["not_adopt"])
        assert (status, answer["error"]["code"]) == (409, why["code"])
        assert answer["error"]["message"] == why["message"]
    assert offered(await seen_by(client, tokens["bureau"], no))[0] == []
