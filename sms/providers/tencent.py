"""Tencent Cloud SMS (API 2021-01-11): SendSms through the SDK's async client, and the two
callbacks Tencent posts to us, delivery status and citizens' replies (SPEC.md section 4).

Tencent sends approved templates only: TemplateId is the code `template_codes` maps our
template id to, and TemplateParamSet is `message.params` **in the Mapping's order**. Tencent's
templates number their variables `{1}`, `{2}`, … and fill them from that list by position, so
whoever builds a message's params builds them in the order its wording uses them (our
templates' placeholders, left to right), and a city registers each template with `{n}` where
our wording has its n-th placeholder (docs/sms-tencent.md). The SignName is the profile's
signature: Tencent adds 【签名】 itself.

The callbacks' `?key=` secret and the optional address allowlist (Tencent publishes its
callback addresses; PINGJIA_TENCENT_SMS_CALLBACK_ALLOW) are checked around these routes by the
registry's CallbackGuard (sms/providers/plugin.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from aiohttp import web
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tencentcloud.common.credential import Credential  # type: ignore[import-untyped]
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (  # type: ignore[import-untyped]
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile  # type: ignore[import-untyped]
from tencentcloud.common.profile.http_profile import HttpProfile  # type: ignore[import-untyped]
from tencentcloud.sms.v20210111 import models  # type: ignore[import-untyped]
from tencentcloud.sms.v20210111.sms_client_async import SmsClient  # type: ignore[import-untyped]

from rating.networks import Network, parse_networks
from sms.providers import (
    BuildContext,
    OutboundSms,
    ProviderError,
    SendReceipt,
    SmsEvents,
)
from sms.providers.aiohttp_transport import AiohttpTransport
from sms.providers.plugin import (
    CallbackGuard,
    ProviderPlugin,
    check_endpoint,
    check_extend_code,
    numbered,
)
from sms.providers.tencent_callbacks import (
    ACCEPTED,
    DOCS,
    REPLY_PATH,
    STATUS_PATH,
    STATUS_WORDS,
    TencentCallbacks,
)

log = structlog.get_logger("pingjia.sms")
PUBLIC_ENDPOINT = "https://sms.tencentcloudapi.com"
# (field, environment variable) of the settings without which nothing can be sent.
REQUIRED = (
    ("secret_id", "TENCENTCLOUD_SECRET_ID"),
    ("secret_key", "TENCENTCLOUD_SECRET_KEY"),
    ("app_id", "PINGJIA_TENCENT_SMS_APP_ID"),
)


class TencentSmsSettings(BaseSettings):
    """What the Tencent provider reads from the environment (and a `.env` file)."""

    model_config = SettingsConfigDict(
        env_prefix="PINGJIA_TENCENT_SMS_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # the input holds the secret key
    )

    secret_id: str = Field(
        validation_alias=AliasChoices("TENCENTCLOUD_SECRET_ID", "secret_id"),
        description="SecretId of a CAM key allowed to send SMS",
    )
    secret_key: SecretStr = Field(
        validation_alias=AliasChoices("TENCENTCLOUD_SECRET_KEY", "secret_key"),
        description="SecretKey of that CAM key",
    )
    app_id: str = Field(description="SmsSdkAppId of the SMS application, e.g. 1400000000")
    endpoint: str = Field(PUBLIC_ENDPOINT, description="API endpoint URL (a fake in tests)")
    region: str = Field("ap-guangzhou", description="API region (X-TC-Region)")
    extend_code: str | None = Field(
        None, description="extension (扩展码) sent with messages that carry none of their own"
    )
    callback_allow: str = Field(
        "",
        description="addresses or networks allowed to post callbacks, comma-separated "
        "(Tencent's published list); empty: any address",
    )

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        """Name the environment variables that are missing, not pydantic's field names."""
        if isinstance(data, dict):
            given = {str(k).lower(): v for k, v in data.items()}
            missing = [
                env
                for name, env in REQUIRED
                if not str(given.get(name) or given.get(env.lower()) or "").strip()
            ]
            if missing:
                raise ValueError(f"PINGJIA_SMS_PROVIDER=tencent needs {', '.join(missing)}")
        return data

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if not value.strip().isdigit():
            raise ValueError(
                f"PINGJIA_TENCENT_SMS_APP_ID must be the SmsSdkAppId digits: {value!r}"
            )
        return value.strip()

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_endpoint(value, "PINGJIA_TENCENT_SMS_ENDPOINT", PUBLIC_ENDPOINT)

    @field_validator("extend_code")
    @classmethod
    def _extend_code(cls, value: str | None) -> str | None:
        return check_extend_code(value, "PINGJIA_TENCENT_SMS_EXTEND_CODE")

    @field_validator("callback_allow")
    @classmethod
    def _callback_allow(cls, value: str) -> str:
        allowed_networks(value)  # refuses what is not an address or a network
        return value


ALLOW_ENV = "PINGJIA_TENCENT_SMS_CALLBACK_ALLOW"


def allowed_networks(spec: str) -> tuple[Network, ...]:
    """The networks of a comma-separated allowlist; a bad item is a ValueError naming it."""
    return parse_networks(spec, ALLOW_ENV)


def tencent_phone(phone: str) -> str:
    """Tencent wants E.164: a mainland number (our normalized form) gets +86."""
    if phone.startswith("+"):
        return phone
    return "+86" + (phone[1:] if phone.startswith("0") else phone)


# Error codes (errorcodes.py of the SDK, and the SDK's own ServerNetworkError for a non-200
# answer) that a later try may get past: Tencent's failures and short-window rate limits.
# Everything that says our request, account, template or number is wrong is permanent, and
# so are the daily limits (retrying within the day only adds to them).
RETRYABLE_CODES = frozenset(
    {
        "ServerNetworkError",
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.GlobalSmsSendingRateLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
    }
)
RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded", "ResourceUnavailable")
PERMANENT_PREFIXES = (
    "FailedOperation",
    "InvalidParameter",
    "UnauthorizedOperation",
    "AuthFailure",
    "MissingParameter",
    "UnknownParameter",
    "UnsupportedOperation",
    "LimitExceeded",
    "ResourceNotFound",
    "InvalidAction",
)


def refusal(code: str, message: str) -> ProviderError:
    """Tencent's error `code` as our ProviderError; an unknown code may pass on a retry."""
    retryable = code in RETRYABLE_CODES or code.startswith(RETRYABLE_PREFIXES)
    if not retryable and not code.startswith(PERMANENT_PREFIXES):
        retryable = True  # a code we do not know: a bounded retry rather than a lost message
    return ProviderError(f"Tencent Cloud SMS answered {code}: {message[:200]}", retryable=retryable)


class TencentSmsProvider:
    """Sends through Tencent Cloud SMS; see the module docstring for templates and params."""

    name = "tencent"

    def __init__(
        self,
        settings: TencentSmsSettings,
        *,
        signature: str,
        template_codes: Mapping[str, str],
        clock: Callable[[], datetime],
        connections: int = 100,
        timeout: float = 10.0,
    ) -> None:
        endpoint = urlsplit(settings.endpoint)
        http = HttpProfile(protocol=endpoint.scheme, endpoint=endpoint.netloc, reqTimeout=timeout)
        # No retryer: the SDK then sends once (our outbox decides about retries). The region
        # breaker stays off (the SDK's default): it would switch to a public backup host.
        profile = ClientProfile(httpProfile=http)
        credential = Credential(settings.secret_id, settings.secret_key.get_secret_value())
        self.client = SmsClient(credential, settings.region, profile)
        # Our own client in place of the SDK's: the SDK's keeps no connection alive unless told
        # and fixes its pool at httpx's default of 100; ours keeps `connections` (our send
        # concurrency) alive, over aiohttp (sms/providers/aiohttp_transport.py says why).
        self._sdk_http: httpx.AsyncClient = self.client.http_client
        self.client.http_client = httpx.AsyncClient(
            timeout=timeout, transport=AiohttpTransport(connections, timeout)
        )
        self._slots = asyncio.Semaphore(connections)
        self.app_id = settings.app_id
        self.extend_code = settings.extend_code
        self.signature = signature
        self.template_codes = dict(template_codes)
        self.clock = clock

    async def start(self, events: SmsEvents) -> None:
        """Nothing to start: Tencent reaches us through the callback routes."""
        return None

    def request(self, message: OutboundSms) -> Any:
        """The SendSmsRequest for `message`; ProviderError when its template has no code."""
        code = self.template_codes.get(message.template)
        if not code:
            raise ProviderError(
                f"no Tencent template code for SMS template {message.template!r}: register the "
                "template with Tencent and map it in PINGJIA_SMS_TEMPLATE_CODES",
                retryable=False,
            )
        request = models.SendSmsRequest()
        request.SmsSdkAppId = self.app_id
        request.SignName = self.signature
        request.TemplateId = code
        request.TemplateParamSet = [str(value) for value in message.params.values()]
        request.PhoneNumberSet = [tencent_phone(message.to)]
        request.SessionContext = message.reference
        request.ExtendCode = message.ext_code or self.extend_code
        return request

    async def send(self, message: OutboundSms) -> SendReceipt:
        request = self.request(message)
        async with self._slots:
            try:
                response = await self.client.SendSms(request)
            except TencentCloudSDKException as exc:
                raise refusal(str(exc.code), _text(exc.message)) from None
            except httpx.HTTPError as exc:
                raise ProviderError(
                    f"Tencent Cloud SMS not reachable: {exc!r}", retryable=True
                ) from None
            except (ValueError, LookupError, TypeError, AttributeError) as exc:
                # A 200 that is not Tencent's JSON (a proxy's page, a cut body): the SDK fails
                # reading it; the message may not have left, so a later try is allowed.
                raise ProviderError(
                    f"Tencent Cloud SMS answered something unreadable: {exc!r}", retryable=True
                ) from None
        return receipt(response)

    def extension(self, to_address: str) -> str | None:
        # Tencent gives a reply's extension apart (`extend`: InboundReply.extension).
        return None

    async def close(self) -> None:
        await self.client.http_client.aclose()
        await self._sdk_http.aclose()


def _text(message: object) -> str:
    """An SDK error's message: ServerNetworkError carries the answer's body as bytes."""
    if isinstance(message, bytes):
        return message.decode(errors="replace")
    return str(message or "")


def receipt(response: Any) -> SendReceipt:
    """SendStatusSet[0] of a SendSms answer: its SerialNo when its Code is Ok, else a refusal."""
    statuses = getattr(response, "SendStatusSet", None) or []
    if not statuses:
        raise ProviderError("Tencent Cloud SMS answered without a SendStatusSet", retryable=True)
    status = statuses[0]
    if status.Code != "Ok":
        raise refusal(str(status.Code or "unknown"), str(status.Message or ""))
    if not status.SerialNo:
        raise ProviderError("Tencent Cloud SMS answered Ok without a SerialNo", retryable=True)
    return SendReceipt(str(status.SerialNo), "sent")


def build(settings: TencentSmsSettings, context: BuildContext) -> TencentSmsProvider:
    """The provider for the registry: built inside the running loop, closed on shutdown."""
    return TencentSmsProvider(
        settings,
        signature=context.signature,
        template_codes=context.template_codes,
        clock=context.clock,
        connections=context.connections,
    )


def routes(
    provider: TencentSmsProvider, events: SmsEvents, guard: CallbackGuard
) -> list[web.RouteDef]:
    """The callback routes behind the `?key=` guard, which also checks the allowlist."""
    callbacks = TencentCallbacks(events, provider.clock)
    return [
        *guard.routes(STATUS_PATH, callbacks.status, accepted),
        *guard.routes(REPLY_PATH, callbacks.reply, accepted),
    ]


def accepted() -> web.Response:
    return web.json_response(ACCEPTED)


PLUGIN = ProviderPlugin(
    name="tencent",
    settings=TencentSmsSettings,
    build=build,
    routes=routes,
    status_words=STATUS_WORDS,
    sends_templates=True,
    template_wording=numbered,
    callback_paths=(STATUS_PATH, REPLY_PATH),
    callback_docs=DOCS,
)
