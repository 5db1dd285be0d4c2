"""The callback guard every provider's callbacks sit behind (sms/providers/plugin.py).

Bad inputs tried: no key, an empty key, a wrong key, a key differing in case, the right key
as a second `key` value only, a prefix of the key; a peer outside the allowlist; an allowlist
item that is no address; no key configured at all. Probes: GET, HEAD, an empty POST.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from rating.networks import parse_networks
from sms.providers.plugin import CallbackGuard

KEY = "k3y-0f-the-city-callbacks"


def app_with(guard: CallbackGuard, seen: list[bytes]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"stored": True})

    app = web.Application()
    app.add_routes(guard.routes("/cb", handler, lambda: web.json_response({"ack": True})))
    return app


@pytest.mark.parametrize(
    "query",
    ["", "?key=", "?key=wrong", f"?key={KEY.upper()}", f"?key={KEY[:-1]}", f"?key=x&key={KEY}"],
)
async def test_a_callback_without_the_right_key_is_404_and_reaches_nothing(
    aiohttp_client: Any, query: str
) -> None:
    seen: list[bytes] = []
    client: TestClient = await aiohttp_client(app_with(CallbackGuard(KEY), seen))
    for method in ("POST", "GET", "HEAD"):
        response = await client.request(method, "/cb" + query, data=b'{"a": 1}')
        assert response.status == 404, (method, query)
    assert seen == []


async def test_the_right_key_reaches_the_handler_and_probes_get_the_ack(
    aiohttp_client: Any,
) -> None:
    seen: list[bytes] = []
    client: TestClient = await aiohttp_client(app_with(CallbackGuard(KEY), seen))
    posted = await client.post(f"/cb?key={KEY}", data=b'[{"x": 1}]')
    assert posted.status == 200 and await posted.json() == {"stored": True}
    assert seen == [b'[{"x": 1}]']
    probe = await client.get(f"/cb?key={KEY}")
    assert probe.status == 200 and await probe.json() == {"ack": True}
    assert (await client.head(f"/cb?key={KEY}")).status == 200
    empty = await client.post(f"/cb?key={KEY}", data=b"")
    assert empty.status == 200 and await empty.json() == {"ack": True}
    assert seen == [b'[{"x": 1}]']  # probes stored nothing


async def test_no_key_configured_refuses_every_callback(aiohttp_client: Any) -> None:
    seen: list[bytes] = []
    client: TestClient = await aiohttp_client(app_with(CallbackGuard(None), seen))
    assert (await client.post("/cb?key=", data=b"[]")).status == 404
    assert (await client.post("/cb?key=None", data=b"[]")).status == 404
    assert seen == []


async def test_the_allowlist_refuses_other_peers(aiohttp_client: Any) -> None:
    seen: list[bytes] = []
    elsewhere = CallbackGuard(KEY, parse_networks("203.0.113.0/24, 198.51.100.7", "X_ALLOW"))
    client: TestClient = await aiohttp_client(app_with(elsewhere, seen))
    response = await client.post(f"/cb?key={KEY}", data=b"[]")
    assert response.status == 403 and seen == []
    local = CallbackGuard(KEY, parse_networks("127.0.0.0/8", "X_ALLOW"))
    client = await aiohttp_client(app_with(local, seen))
    assert (await client.post(f"/cb?key={KEY}", data=b"[]")).status == 200
    assert seen == [b"[]"]


def test_a_bad_allowlist_item_names_the_variable() -> None:
    with pytest.raises(ValueError, match=r"X_ALLOW: 'not-an-ip' is not an address"):
        parse_networks("10.0.0.1,not-an-ip", "X_ALLOW")
