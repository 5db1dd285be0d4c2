"""The HTTP edge: security headers, secure cookies behind HTTPS, the client behind a trusted
proxy, brute-force limits on /r/{token} and the console sign-in, 503 when a backing service
is down.

Bad inputs tried here: a forged X-Forwarded-For from an untrusted peer, garbage and overlong
X-Forwarded-For lists, a forged X-Forwarded-Proto, a malformed PINGJIA_TRUSTED_PROXIES entry,
guessed rating links, wrong console tokens (then a right one while blocked), a database and a
Redis that refuse connections.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from pingjia.api.edge import TrustedProxies
from pingjia.api.limits import MISSES_PER_WINDOW
from pingjia.app import build_app
from pingjia.composition import Services, build_services
from ratepage.page import MISSES_PER_WINDOW as LINK_MISSES
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock


def free_port() -> int:
    """A port nothing listens on (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/pingjia.db"


async def edge_client(
    aiohttp_client: Any, url: str, tmp_path: Any, clock: FakeClock, **overrides: Any
) -> tuple[TestClient, Services]:
    services = await build_services(
        make_settings(url, tmp_path, **overrides), clock=clock, state=MemoryState()
    )
    client = await aiohttp_client(build_app(services))
    return client, services


@pytest.fixture
async def built(aiohttp_client: Any, sqlite_url: str, tmp_path: Any, clock: FakeClock) -> Any:
    client, services = await edge_client(
        aiohttp_client, sqlite_url, tmp_path, clock, trusted_proxies="127.0.0.1/32, ::1"
    )
    yield client, services
    await services.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/openapi.json", "/healthz", "/api/v1/calls", "/console/signin", "/r/nothing"]
)
async def test_every_answer_has_the_security_headers(built: Any, path: str) -> None:
    client, _ = built
    response = await client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


async def test_pages_keep_their_own_nonce_csp(built: Any) -> None:
    client, _ = built
    response = await client.get("/console/signin")
    assert "script-src 'nonce-" in response.headers["Content-Security-Policy"]


async def test_cookies_are_secure_behind_an_https_proxy_only(built: Any) -> None:
    client, _ = built
    plain = await client.get("/console/signin")
    assert "Secure" not in plain.headers["Set-Cookie"]
    client.session.cookie_jar.clear()  # a new visitor, who gets a new session cookie
    proxied = await client.get("/console/signin", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in proxied.headers["Set-Cookie"]
    assert "HttpOnly" in proxied.headers["Set-Cookie"]
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_forwarded_proto_from_an_untrusted_peer_is_ignored(
    aiohttp_client: Any, sqlite_url: str, tmp_path: Any, clock: FakeClock
) -> None:
    client, services = await edge_client(aiohttp_client, sqlite_url, tmp_path, clock)
    try:
        response = await client.get("/console/signin", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in response.headers["Set-Cookie"]
    finally:
        await services.close()


async def test_https_public_url_makes_cookies_secure(
    aiohttp_client: Any, sqlite_url: str, tmp_path: Any, clock: FakeClock
) -> None:
    client, services = await edge_client(
        aiohttp_client, sqlite_url, tmp_path, clock, public_url="https://pj.example.gov.cn"
    )
    try:
        response = await client.get("/console/signin")
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        await services.close()


# --- the client behind a proxy ----------------------------------------------------------------


def test_client_address_is_believed_only_from_trusted_proxies() -> None:
    proxies = TrustedProxies.parse("10.0.0.0/8, 192.168.1.5")
    assert proxies.client("203.0.113.9", ["1.2.3.4"]) == "203.0.113.9"  # untrusted peer
    assert proxies.client("10.0.0.1", ["1.2.3.4"]) == "1.2.3.4"
    # The client's own claim (leftmost) is skipped: the rightmost untrusted hop is the client.
    assert proxies.client("10.0.0.1", ["6.6.6.6, 1.2.3.4, 192.168.1.5"]) == "1.2.3.4"
    assert proxies.client("10.0.0.1", ["6.6.6.6", "1.2.3.4"]) == "1.2.3.4"  # two headers
    assert proxies.client("10.0.0.1", ["garbage, 1.2.3.4"]) == "1.2.3.4"
    assert proxies.client("10.0.0.1", ["1.2.3.4, garbage"]) == "10.0.0.1"  # stop at garbage
    assert proxies.client("10.0.0.1", []) == "10.0.0.1"
    assert proxies.client("10.0.0.1", ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert proxies.client("10.0.0.1", ["1.2.3.4:5555"]) == "1.2.3.4"
    long = ", ".join(["10.0.0.2"] * 500 + ["1.2.3.4"])
    assert proxies.client("10.0.0.1", [long]) == "1.2.3.4"
    all_proxies = ", ".join(["10.0.0.2"] * 500)
    assert proxies.client("10.0.0.1", [all_proxies]) == "10.0.0.2"


@pytest.mark.parametrize("bad", ["10.0.0.300", "proxy.local", "10.0.0.0/33"])
def test_a_bad_trusted_proxy_entry_stops_start_up(tmp_path: Any, bad: str) -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        make_settings("sqlite+aiosqlite:///x.db", tmp_path, trusted_proxies=f"10.0.0.1, {bad}")


async def test_link_guessing_is_limited_per_client_behind_the_proxy(built: Any) -> None:
    client, _ = built
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    for n in range(LINK_MISSES):
        assert (await client.get(f"/r/guess{n}", headers=guesser)).status == 404
    limited = await client.get("/r/guess-more", headers=guesser)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    # Another citizen behind the same proxy is not slowed down by the guesser.
    other = await client.get("/r/guess-x", headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status == 404


async def test_sign_in_guessing_is_blocked_per_client(built: Any) -> None:
    client, services = built
    token = await services.tokens.create("admin", "boss", services.clock())

    async def sign_in(value: str, address: str) -> int:
        headers = {"X-Forwarded-For": address}
        page = await client.get("/console/signin", headers=headers)
        response = await client.post(
            "/console/signin",
            data={"csrf": csrf_of(await page.text()), "token": value},
            headers=headers,
            allow_redirects=False,
        )
        return response.status

    guesser = "198.51.100.7"
    for n in range(MISSES_PER_WINDOW):
        assert await sign_in(f"pj_wrong{n}", guesser) == 401
    assert await sign_in("pj_wrong-again", guesser) == 429
    # Blocked means blocked: even the right token is not told apart from a wrong one.
    assert await sign_in(token, guesser) == 429
    # Someone else behind the same proxy signs in.
    assert await sign_in(token, "198.51.100.8") == 303


async def test_sign_in_successes_do_not_count(built: Any) -> None:
    client, services = built
    token = await services.tokens.create("admin", "boss", services.clock())
    for _ in range(MISSES_PER_WINDOW * 2):
        page = await client.get("/console/signin")
        response = await client.post(
            "/console/signin",
            data={"csrf": csrf_of(await page.text()), "token": token},
            allow_redirects=False,
        )
        assert response.status == 303


# --- a backing service down -------------------------------------------------------------------


async def test_database_down_is_503_with_retry_after(
    aiohttp_client: Any, tmp_path: Any, clock: FakeClock
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    services = await build_services(
        make_settings(url, tmp_path), migrate=False, clock=clock, state=MemoryState()
    )
    client = await aiohttp_client(build_app(services))
    try:
        token_headers = {"Authorization": "Bearer pj_anything"}
        for path in ("/api/v1/calls", "/api/v1/tickets"):
            response = await client.get(path, headers=token_headers)
            assert response.status == 503, await response.text()
            assert int(response.headers["Retry-After"]) > 0
            assert (await response.json())["error"]["code"] == "unavailable"
        form = await client.get("/console/signin")  # needs no database
        page = await client.post(
            "/console/signin",
            data={"csrf": csrf_of(await form.text()), "token": "pj_anything"},
            allow_redirects=False,
        )
        assert page.status == 503 and "稍后再试" in await page.text()
        link = await client.get("/r/abcdefgh")
        assert link.status == 503 and "Retry-After" in link.headers
        assert (await client.get("/healthz")).status == 503
    finally:
        await services.close()


async def test_redis_down_is_never_a_500(
    aiohttp_client: Any, sqlite_url: str, tmp_path: Any, clock: FakeClock
) -> None:
    services = await build_services(
        make_settings(sqlite_url, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0"),
        clock=clock,
    )
    client = await aiohttp_client(build_app(services))
    try:
        token = await services.tokens.create("admin", "boss", services.clock())
        headers = {"Authorization": f"Bearer {token}"}
        for path in ("/api/v1/tickets", "/r/abcdefgh", "/console/signin", "/healthz"):
            response = await client.get(path, headers=headers)
            assert response.status < 500 or (
                response.status == 503 and "Retry-After" in response.headers
            ), (path, response.status)
        page = await client.get("/console/signin")
        signin = await client.post(
            "/console/signin",
            data={"csrf": csrf_of(await page.text()), "token": "pj_wrong"},
            allow_redirects=False,
        )
        assert signin.status == 401  # the limiter steps aside, the check still runs
    finally:
        await services.close()
