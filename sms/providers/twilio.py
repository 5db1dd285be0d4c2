"""Twilio through its own SDK (async client), pointable at another host for tests and proxies."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from sms.providers import OutboundSms, ProviderError, SendReceipt


def e164(phone: str) -> str:
    """Twilio wants E.164: a mainland mobile or landline gets +86 (landlines drop the 0)."""
    if phone.startswith("+"):
        return phone
    return "+86" + (phone[1:] if phone.startswith("0") else phone)


class PooledHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP client on our own aiohttp session (the SDK's documented hook: a
    custom `http_client`); the SDK still builds, signs and parses every request.

    Why not the stock one: its session keeps aiohttp's 100-connection default whatever our
    send concurrency; it passes `timeout=None` with every request, which aiohttp reads as "no
    timeout", so a stalled Twilio held a send slot forever; and it writes about a dozen INFO
    log lines per request (headers included) and encodes auth and form through aiohttp's
    deprecated per-request paths, CPU that every message paid (bench/README.md, SMS).
    """

    def __init__(self, timeout: float, connections: int) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's signature)
        allow_redirects: bool = False,
    ) -> Response:
        """One request as the SDK asks for it; the answer as the SDK reads it."""
        headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(":".join(auth).encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        body = urlencode(data, doseq=True).encode() if data is not None else None
        async with self.session.request(
            method.upper(),
            url,
            params=params,
            data=body,
            headers=headers,
            allow_redirects=allow_redirects,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
        ) as response:
            return Response(response.status, await response.text(), response.headers)


class TwilioProvider:
    """Sends through Twilio's Messages API with a status callback to our webhook."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        status_callback: str,
        *,
        api_url: str | None = None,
        timeout: float = 10.0,
        connections: int = 100,
    ) -> None:
        # The HTTP client opens an aiohttp session in its constructor: build this provider
        # inside the running loop and close it on shutdown. `connections`: at least the send
        # concurrency (SmsService), or sends queue for a connection inside their slot.
        self._http = PooledHttpClient(timeout, connections)
        # environment={}: TWILIO_REGION / TWILIO_EDGE in the process environment would rewrite
        # the host (and a local test URL into nonsense); our settings say where to go.
        self.client = Client(account_sid, auth_token, http_client=self._http, environment={})
        if api_url:
            self.client.api.base_url = api_url.rstrip("/")
        self.sender = sender
        self.status_callback = status_callback

    async def send(self, message: OutboundSms) -> SendReceipt:
        try:
            created = await self.client.messages.create_async(
                to=e164(message.to),
                from_=self.sender,
                body=message.text,
                status_callback=self.status_callback,
            )
        except TwilioRestException as exc:
            retryable = exc.status >= 500 or exc.status == 429
            raise ProviderError(
                f"Twilio answered {exc.status} (code {exc.code}): {exc.msg}", retryable=retryable
            ) from None
        except (aiohttp.ClientError, TimeoutError, TwilioException) as exc:
            raise ProviderError(f"Twilio not reachable: {exc!r}", retryable=True) from None
        if not created.sid:
            raise ProviderError("Twilio answered without a message sid", retryable=True)
        return SendReceipt(created.sid, str(created.status or "queued"))

    def extension(self, to_address: str) -> str | None:
        # Twilio numbers carry no sub-number extension.
        return None

    async def close(self) -> None:
        await self._http.close()
