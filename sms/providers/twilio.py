"""Twilio through its own SDK (async client), pointable at another host for tests and proxies."""

from __future__ import annotations

import aiohttp
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from sms.providers import OutboundSms, ProviderError, SendReceipt


def e164(phone: str) -> str:
    """Twilio wants E.164: a mainland mobile or landline gets +86 (landlines drop the 0)."""
    if phone.startswith("+"):
        return phone
    return "+86" + (phone[1:] if phone.startswith("0") else phone)


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
    ) -> None:
        # AsyncTwilioHttpClient opens an aiohttp session in its constructor: build this
        # provider inside the running loop and close it on shutdown.
        self._http = AsyncTwilioHttpClient(timeout=timeout)
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
