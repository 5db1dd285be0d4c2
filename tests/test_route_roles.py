"""Every API route × every role, and no token, a wrong token, a revoked token.

Each route declares the roles it admits (pingjia/api/routing.py); this walks the declared
routes of every API part, so a route added later is covered too. Expected: no token, a wrong
token, a revoked token → 401 with WWW-Authenticate; a role the route does not admit → 403;
an admitted role → neither 401 nor 403 (the request itself may be refused: an empty body,
an unknown ticket). Also: the webhooks refuse an unsigned call, the console needs a sign-in.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pingjia.api.calls import api as calls_api
from pingjia.api.dead_letters import api as dead_letters_api
from pingjia.api.routing import Route
from pingjia.api.stats import api as stats_api
from pingjia.api.tickets import api as ticket_api
from pingjia.api.tokens import api as tokens_api
from pingjia.api.views import api as views_api
from pingjia.app import build_app
from pingjia.auth import ROLES
from pingjia.composition import Services

AGENCY = "台山市市场监督管理局"
ROUTES: list[Route] = [
    r
    for part in (views_api, ticket_api, stats_api, calls_api, dead_letters_api, tokens_api)
    for r in part.routes
]


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: "1" if m.group(1).endswith("id") else "T1", path)


@pytest.fixture
async def setup(aiohttp_client: Any, services: Services) -> tuple[TestClient, dict[str, str]]:
    now = services.clock()
    tokens = {
        role: await services.tokens.create(
            role, f"t-{role}", now, agency=AGENCY if role == "agency" else None
        )
        for role in ROLES
    }
    revoked = await services.tokens.create("admin", "gone", now)
    await services.tokens.revoke("gone", "admin:test", now)
    tokens["revoked"] = revoked
    tokens["wrong"] = "pj_" + "x" * 43
    client = await aiohttp_client(build_app(services))
    return client, tokens


async def test_every_route_as_every_caller(setup: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = setup
    assert len(ROUTES) >= 25
    checked = 0
    for route in ROUTES:
        path = concrete(route.path)
        for caller in (*ROLES, "revoked", "wrong", None):
            headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller else {}
            response = await client.request(route.method, path, headers=headers, json={})
            status = response.status
            where = f"{route.method} {route.path} as {caller}: {status}"
            if route.roles is None:
                assert status not in (401, 403), where
            elif caller in (None, "revoked", "wrong"):
                assert status == 401, where
                assert response.headers["WWW-Authenticate"] == "Bearer", where
            elif caller not in route.roles:
                assert status == 403, where
                assert (await response.json())["error"]["code"] == "forbidden", where
            else:
                assert status not in (401, 403) or (
                    status == 403 and caller == "agency"  # another agency's ticket: refused
                ), where
            assert status < 500, where
            checked += 1
    assert checked == len(ROUTES) * (len(ROLES) + 3)


@pytest.mark.parametrize("path", ["/sms/twilio/inbound", "/sms/twilio/status"])
async def test_webhooks_refuse_unsigned_calls(
    setup: tuple[TestClient, dict[str, str]], path: str
) -> None:
    client, tokens = setup
    response = await client.post(
        path,
        data={"MessageSid": "SM1", "From": "+8613812345678", "Body": "1"},
        headers={"Authorization": f"Bearer {tokens['admin']}"},  # a bearer token is no key
    )
    assert response.status == 404  # without the city's ?key= the callback reads as no route


@pytest.mark.parametrize(
    "path", ["/console/tickets", "/console/board", "/console/stats", "/console/stats.csv"]
)
async def test_console_pages_need_a_sign_in(
    setup: tuple[TestClient, dict[str, str]], path: str
) -> None:
    client, tokens = setup
    response = await client.get(
        path, headers={"Authorization": f"Bearer {tokens['admin']}"}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/console/signin"
