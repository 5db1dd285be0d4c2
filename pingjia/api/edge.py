"""The HTTP edge: who the client is behind a proxy, the security headers, secure cookies.

The client address comes from `X-Forwarded-For` (and the scheme from `X-Forwarded-Proto`) only
when the peer that connected is one of PINGJIA_TRUSTED_PROXIES: anyone else could write those
headers to dodge a per-client limit. Walking the list from the right, the first address that
is not itself a trusted proxy is the client (the leftmost entries are the client's own claim).
Every answer gets no-sniff, frame denial, a referrer policy and, unless its handler set one, a
CSP that allows nothing (JSON and CSV need no scripts); pages keep their nonce-based CSP. When
the request came over HTTPS (directly, via a trusted proxy, or PINGJIA_PUBLIC_URL is https),
every cookie set is marked Secure and HSTS is sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from rating.networks import Network, parse_networks

MAX_FORWARDED_HOPS = 20  # a longer X-Forwarded-For is not from our proxies: read no further
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HSTS = "max-age=31536000"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        return cls(parse_networks(text, "PINGJIA_TRUSTED_PROXIES"))

    def trusts(self, peer: str | None) -> bool:
        address = _address(peer) if peer else None
        return address is not None and any(address in net for net in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client behind `peer`: the peer itself unless it is a trusted proxy."""
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for header in forwarded_for for h in header.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
            address = _address(hop)
            if address is None:
                break  # garbage: the last good hop is as far as we can believe
            client = str(address)
            if not any(address in net for net in self.networks):
                break
        return client


def client_middleware(proxies: TrustedProxies) -> Middleware:
    """Replace `request.remote` (and the scheme) by what a trusted proxy says."""

    @web.middleware
    async def client(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        if peer is None or not proxies.networks or not proxies.trusts(peer):
            return await handler(request)
        remote = proxies.client(peer, request.headers.getall("X-Forwarded-For", []))
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        scheme = proto if proto in {"http", "https"} else request.scheme
        return await handler(request.clone(remote=remote, scheme=scheme))

    return client


def headers_middleware(public_url: str) -> Middleware:
    """Security headers on every answer; Secure cookies and HSTS when served over HTTPS."""
    public_https = urlsplit(public_url).scheme == "https"

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and the like: they carry headers too
            _secure(exc, https=public_https or request.scheme == "https")
            raise
        _secure(response, https=public_https or request.scheme == "https")
        return response

    return headers


def _secure(response: web.StreamResponse, *, https: bool) -> None:
    if response.prepared:  # a streamed answer: its headers are gone already
        return
    found = response.headers
    found.setdefault("X-Content-Type-Options", "nosniff")
    found.setdefault("X-Frame-Options", "DENY")
    found.setdefault("Referrer-Policy", "same-origin")
    found.setdefault("Content-Security-Policy", DEFAULT_CSP)
    if https:
        found.setdefault("Strict-Transport-Security", HSTS)
        for morsel in response.cookies.values():
            morsel["secure"] = True


@web.middleware
async def body_type_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A multipart body without its boundary cannot be read: 400, not a parser's 500."""
    declared = request.headers.get("Content-Type", "").lower()
    if declared.strip().startswith("multipart/") and "boundary=" not in declared:
        raise web.HTTPBadRequest(reason="a multipart body needs a boundary in its Content-Type")
    return await handler(request)
