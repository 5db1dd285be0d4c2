"""Twilio's Messages API, one POST per message, as the Twilio SDK sends it, without its CPU.

The SDK (async client) cost about half a millisecond of CPU per message, most of it not the
HTTP request: five layers of request building (headers, user agent and auth rebuilt per call,
the form filtered and encoded in full), then the answer parsed into a `MessageInstance` of
thirty fields (dates included) of which we read two. Here the SDK builds once, at start-up,
what does not change per message (the URL under `api_url`, its headers and user agent, the
Basic auth, the encoded `From` and `StatusCallback`), and each send is one aiohttp request
with that form plus `To` and `Body`, the answer's `sid` and `status` read from its JSON. A
refusal is still the SDK's own exception (`Version.exception`), so errors read as before.

Our aiohttp session, not the SDK's stock client: its connection limit follows our send
concurrency (aiohttp's default of 100 would cap it), and its timeout is applied (the stock
async client passes `timeout=None`, i.e. none, so a stalled Twilio held a send slot forever).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote_plus, urlencode, urlsplit

import aiohttp
from aiohttp import web
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
)
from twilio.base.version import Version  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from rating.networks import parse_networks
from sms.providers import BuildContext, OutboundSms, ProviderError, SendReceipt, SmsEvents
from sms.providers.plugin import CallbackGuard, ProviderPlugin
from sms.providers.twilio_callbacks import (
    DOCS,
    INBOUND_PATH,
    STATUS_PATH,
    STATUS_WORDS,
    TwilioCallbacks,
    our_status,
)

ALLOW_ENV = "PINGJIA_TWILIO_CALLBACK_ALLOW"


class TwilioSmsSettings(BaseSettings):
    """Twilio's block: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM (Twilio's own names,
    as its tools read them) and PINGJIA_TWILIO_* for the rest."""

    model_config = SettingsConfigDict(
        env_prefix="PINGJIA_TWILIO_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # the input holds the auth token
    )

    account_sid: str = Field(
        min_length=1,
        validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "account_sid"),
        description="Account SID (AC…)",
    )
    auth_token: SecretStr = Field(
        min_length=1,
        validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "auth_token"),
        description="Auth token: signs requests and checks the webhooks' signature",
    )
    sender: str = Field(
        min_length=1,
        validation_alias=AliasChoices("TWILIO_FROM", "sender"),
        description="our Twilio number, E.164",
    )
    api_url: str | None = Field(
        None,
        validation_alias=AliasChoices("PINGJIA_TWILIO_API_URL", "api_url"),
        description="point the Twilio client at another host (a fake in tests)",
    )
    callback_allow: str = Field(
        "",
        validation_alias=AliasChoices(ALLOW_ENV, "callback_allow"),
        description="addresses or networks allowed to post webhooks, comma-separated; "
        "empty: any address",
    )

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"PINGJIA_TWILIO_API_URL must be an http(s) URL: {value!r}")
        return value or None

    @field_validator("callback_allow")
    @classmethod
    def _callback_allow(cls, value: str) -> str:
        parse_networks(value, ALLOW_ENV)
        return value


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
        connections: int = 100,
        public_url: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        # The session is opened here: build this provider inside the running loop and close
        # it on shutdown. `connections`: at least the send concurrency (SmsService), or sends
        # queue for a connection inside their slot.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        # environment={}: TWILIO_REGION / TWILIO_EDGE in the process environment would rewrite
        # the host (and a local test URL into nonsense); our settings say where to go.
        client = Client(account_sid, auth_token, environment={})
        if api_url:
            client.api.base_url = api_url.rstrip("/")
        self._path = f"/Accounts/{account_sid}/Messages.json"
        self._url = client.api.v2010.absolute_url(self._path)
        form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        self._headers = client.get_headers("POST", {**form_headers, "Accept": "application/json"})
        basic = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
        self._headers["Authorization"] = f"Basic {basic}"
        # The SDK's form, in its order: To, StatusCallback, From, Body.
        self._fixed = "&" + urlencode({"StatusCallback": status_callback, "From": sender})
        self.sender = sender
        self.status_callback = status_callback
        self.auth_token = auth_token  # the webhooks' signature check
        self.public_url = public_url
        self.clock = clock or (lambda: datetime.now(UTC))

    async def send(self, message: OutboundSms) -> SendReceipt:
        form = f"To={quote_plus(e164(message.to))}{self._fixed}&Body={quote_plus(message.text)}"
        try:
            async with self.session.post(
                self._url, data=form.encode(), headers=self._headers, allow_redirects=False
            ) as response:
                status, text = response.status, await response.text()
                if not 200 <= status < 300:
                    answer = Response(status, text, response.headers)
                    raise Version.exception("POST", self._path, answer, "Unable to create record")
        except TwilioRestException as exc:
            retryable = exc.status >= 500 or exc.status == 429
            raise ProviderError(
                f"Twilio answered {exc.status} (code {exc.code}): {exc.msg}", retryable=retryable
            ) from None
        except (aiohttp.ClientError, TimeoutError, TwilioException) as exc:
            raise ProviderError(f"Twilio not reachable: {exc!r}", retryable=True) from None
        return _receipt(status, text)

    def extension(self, to_address: str) -> str | None:
        # Twilio numbers carry no sub-number extension.
        return None

    async def close(self) -> None:
        await self.session.close()


def _receipt(status: int, text: str) -> SendReceipt:
    """The message's sid and status from a 2xx answer. An answer without a sid (empty, not
    JSON, not an object: a proxy's page, say) is a failure to retry, as the SDK would fail
    reading it, not an error that escapes the provider."""
    try:
        created = json.loads(text) if text else {}
    except ValueError:
        created = None
    if not isinstance(created, dict) or not created.get("sid"):
        raise ProviderError(
            f"Twilio answered {status} without a message sid: {text[:80]!r}", retryable=True
        )
    return SendReceipt(str(created["sid"]), our_status(str(created.get("status") or "queued")))


def build(settings: TwilioSmsSettings, context: BuildContext) -> TwilioProvider:
    """The provider for the registry: built inside the running loop, closed on shutdown. Its
    status callback URL carries the callback key (Twilio signs that URL, key included)."""
    public_url = context.public_url.rstrip("/")
    return TwilioProvider(
        settings.account_sid,
        settings.auth_token.get_secret_value(),
        settings.sender,
        public_url + STATUS_PATH + "?" + urlencode({"key": context.callback_key or ""}),
        api_url=settings.api_url,
        connections=context.connections,
        public_url=public_url,
        clock=context.clock,
    )


def routes(provider: TwilioProvider, events: SmsEvents, guard: CallbackGuard) -> list[web.RouteDef]:
    """The two webhooks, behind the key guard and Twilio's signature check."""
    callbacks = TwilioCallbacks(events, provider.auth_token, provider.public_url, provider.clock)
    return callbacks.routes(guard)


PLUGIN = ProviderPlugin(
    name="twilio",
    settings=TwilioSmsSettings,
    build=build,
    routes=routes,
    status_words=STATUS_WORDS,
    callback_paths=(INBOUND_PATH, STATUS_PATH),
    callback_docs=DOCS,
)
