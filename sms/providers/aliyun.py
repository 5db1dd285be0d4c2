"""Aliyun SMS (dysmsapi 2017-05-25): SendSms through the SDK's async calls, and the two HTTP
pushes Aliyun sends us, delivery reports and citizens' replies (SPEC.md section 4).

Aliyun sends approved templates only: TemplateCode is the code `template_codes` maps our
template id to, TemplateParam is `message.params` as a JSON object (Aliyun's templates name
their variables `${case_no}`, so a city registers our wording with `{x}` written `${x}`:
`pingjia sms templates --provider aliyun` prints it so). SignName is the profile's signature:
Aliyun adds 【签名】 itself. OutId is our message reference, echoed in the delivery report.

SendSms is not idempotent, so we are: the SDK never retries a send (no RetryOptions; one
attempt is one request, the outbox decides about retries), and a reference already sent by
this provider (or in flight) gets the same receipt without a second request.

The SDK opens an aiohttp session per call; ours reuses one (sms/providers/aliyun_transport.py).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web
from alibabacloud_dysmsapi20170525 import models  # type: ignore[import-untyped]
from alibabacloud_dysmsapi20170525.client import Client  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils_models import Config  # type: ignore[import-untyped]
from darabonba.exceptions import (  # type: ignore[import-untyped]
    ResponseException,
    UnretryableException,
)
from darabonba.policy.retry import RetryOptions  # type: ignore[import-untyped]
from darabonba.runtime import RuntimeOptions  # type: ignore[import-untyped]
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rating.networks import parse_networks
from sms.providers import (
    BuildContext,
    OutboundSms,
    ProviderError,
    SendReceipt,
    SmsEvents,
    aliyun_transport,
)
from sms.providers.aliyun_callbacks import (
    DOCS,
    REPORT_PATH,
    STATUS_WORDS,
    UP_PATH,
    AliyunCallbacks,
    accepted,
)
from sms.providers.aliyun_errors import refusal
from sms.providers.plugin import (
    CallbackGuard,
    ProviderPlugin,
    check_endpoint,
    check_extend_code,
    dollar_names,
)

log = structlog.get_logger("pingjia.sms")
PUBLIC_ENDPOINT = "https://dysmsapi.aliyuncs.com"
REMEMBERED = 50_000  # references whose receipt this provider keeps, against a second send
# (field, environment variable) of the settings without which nothing can be sent.
REQUIRED = (
    ("access_key_id", "ALIBABA_CLOUD_ACCESS_KEY_ID"),
    ("access_key_secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
)


class AliyunSmsSettings(BaseSettings):
    """What the Aliyun provider reads from the environment (and a `.env` file)."""

    model_config = SettingsConfigDict(
        env_prefix="PINGJIA_ALIYUN_SMS_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # the input holds the AccessKey secret
    )

    access_key_id: str = Field(
        validation_alias=AliasChoices("ALIBABA_CLOUD_ACCESS_KEY_ID", "access_key_id"),
        description="AccessKey ID of a RAM user allowed to send SMS",
    )
    access_key_secret: SecretStr = Field(
        validation_alias=AliasChoices("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "access_key_secret"),
        description="that AccessKey's secret",
    )
    endpoint: str = Field(PUBLIC_ENDPOINT, description="API endpoint URL (a fake in tests)")
    extend_code: str | None = Field(
        None, description="extension (SmsUpExtendCode) for messages that carry none of their own"
    )
    per_message_extensions: bool = Field(
        False,
        description="send each message's own extension (扩展码, which names its evaluation) as "
        "SmsUpExtendCode; only when Aliyun enabled extensions for the signature",
    )
    callback_allow: str = Field(
        "",
        description="addresses or networks allowed to post callbacks, comma-separated; "
        "empty: any address",
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
                raise ValueError(f"PINGJIA_SMS_PROVIDER=aliyun needs {', '.join(missing)}")
        return data

    @field_validator("access_key_id")
    @classmethod
    def _key_id(cls, value: str) -> str:
        return value.strip()

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_endpoint(value, "PINGJIA_ALIYUN_SMS_ENDPOINT", PUBLIC_ENDPOINT)

    @field_validator("extend_code")
    @classmethod
    def _extend_code(cls, value: str | None) -> str | None:
        return check_extend_code(value, "PINGJIA_ALIYUN_SMS_EXTEND_CODE")

    @field_validator("callback_allow")
    @classmethod
    def _callback_allow(cls, value: str) -> str:
        parse_networks(value, "PINGJIA_ALIYUN_SMS_CALLBACK_ALLOW")  # refuses a bad item
        return value


def aliyun_phone(phone: str) -> str:
    """Aliyun wants a mainland number as its 11 digits (our normalized form) and any other as
    country code + number, without `+` or `00`."""
    if phone.startswith("+86"):
        return phone[3:]
    if phone.startswith("+"):
        return phone[1:]
    if phone.startswith("00"):
        return phone[2:]
    return phone


class AliyunSmsProvider:
    """Sends through Aliyun SMS; see the module docstring for templates and idempotency."""

    name = "aliyun"

    def __init__(
        self,
        settings: AliyunSmsSettings,
        *,
        signature: str,
        template_codes: Mapping[str, str],
        clock: Callable[[], datetime],
        connections: int = 100,
        timeout: float = 10.0,
    ) -> None:
        endpoint = urlsplit(settings.endpoint)
        config = Config(
            access_key_id=settings.access_key_id,
            access_key_secret=settings.access_key_secret.get_secret_value(),
            endpoint=endpoint.netloc,
            protocol=endpoint.scheme.upper(),
            connect_timeout=int(timeout * 1000),
            read_timeout=int(timeout * 1000),
            # Never retried by the SDK: SendSms is not idempotent (module docstring).
            retry_options=RetryOptions({"retryable": False}),
        )
        self.client = Client(config)
        self.runtime = RuntimeOptions(autoretry=False, max_attempts=1)
        aliyun_transport.install()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            auto_decompress=True,
        )
        self._slots = asyncio.Semaphore(connections)
        self.extend_code = settings.extend_code
        self.per_message_extensions = settings.per_message_extensions
        self.signature = signature
        self.template_codes = dict(template_codes)
        self.clock = clock
        self.allowed = parse_networks(settings.callback_allow, "PINGJIA_ALIYUN_SMS_CALLBACK_ALLOW")
        # Our idempotency: reference -> the send of it (in flight, or done with its receipt).
        self._sends: OrderedDict[str, asyncio.Future[SendReceipt]] = OrderedDict()

    async def start(self, events: SmsEvents) -> None:
        """Nothing to start: Aliyun reaches us through the callback routes."""
        return None

    def request(self, message: OutboundSms) -> Any:
        """The SendSmsRequest for `message`; ProviderError when its template has no code."""
        code = self.template_codes.get(message.template)
        if not code:
            raise ProviderError(
                f"no aliyun template code for SMS template {message.template!r}: register the "
                "template with Aliyun and map it in PINGJIA_SMS_TEMPLATE_CODES",
                retryable=False,
            )
        params = {name: str(value) for name, value in message.params.items()}
        own = message.ext_code if self.per_message_extensions else None
        return models.SendSmsRequest(
            phone_numbers=aliyun_phone(message.to),
            sign_name=self.signature,
            template_code=code,
            template_param=json.dumps(params, ensure_ascii=False) if params else None,
            out_id=message.reference,
            sms_up_extend_code=own or self.extend_code,
        )

    async def send(self, message: OutboundSms) -> SendReceipt:
        """One SendSms per reference: a repeat waits for (or gets) the first one's receipt."""
        request = self.request(message)
        earlier = self._sends.get(message.reference)
        if earlier is not None:
            return await asyncio.shield(earlier)
        sending: asyncio.Future[SendReceipt] = asyncio.get_running_loop().create_future()
        self._sends[message.reference] = sending
        try:
            receipt = await self._send(request)
        except BaseException as exc:
            self._sends.pop(message.reference, None)  # not sent: a later try may send it
            shared = exc
            if not isinstance(exc, ProviderError):  # cancelled, say: the repeat may retry
                shared = ProviderError(
                    f"the first send of {message.reference!r} did not finish: {exc!r}",
                    retryable=True,
                )
            sending.set_exception(shared)
            sending.exception()  # retrieved: a repeat that never comes logs no warning
            raise
        sending.set_result(receipt)
        while len(self._sends) > REMEMBERED:
            self._sends.popitem(last=False)
        return receipt

    async def _send(self, request: Any) -> SendReceipt:
        async with self._slots:
            try:
                with aliyun_transport.using(self.session):
                    response = await self.client.send_sms_with_options_async(request, self.runtime)
            except ResponseException as exc:  # the gateway's 4xx/5xx, its code read by the SDK
                data = exc.data if isinstance(exc.data, dict) else {}
                message = str(data.get("Message") or exc.message or "")
                raise refusal(str(exc.code or "unknown"), message, exc.status_code) from None
            except UnretryableException as exc:
                # A network fault (the transport's RetryError) or an answer the SDK could not
                # read (a proxy's page, a cut body): the message may not have left.
                inner = getattr(exc, "inner_exception", None)
                reason = getattr(inner, "message", None) or repr(inner or exc)
                raise ProviderError(
                    f"Aliyun SMS not reachable or unreadable: {reason}"[:300], retryable=True
                ) from None
        return receipt(response)

    def extension(self, to_address: str) -> str | None:
        # Aliyun gives a reply's extension apart (dest_code), not in an address.
        return None

    async def close(self) -> None:
        await self.session.close()


def receipt(response: Any) -> SendReceipt:
    """A SendSms answer: its BizId when its Code is OK, else a refusal."""
    body = getattr(response, "body", None)
    code = str(getattr(body, "code", None) or "")
    if not code:
        raise ProviderError("Aliyun SMS answered without a Code", retryable=True)
    if code != "OK":
        raise refusal(code, str(getattr(body, "message", None) or ""))
    biz_id = getattr(body, "biz_id", None)
    if not biz_id:
        raise ProviderError("Aliyun SMS answered OK without a BizId", retryable=True)
    return SendReceipt(str(biz_id), "sent")


def build(settings: AliyunSmsSettings, context: BuildContext) -> AliyunSmsProvider:
    """The provider for the registry: built inside the running loop, closed on shutdown."""
    return AliyunSmsProvider(
        settings,
        signature=context.signature,
        template_codes=context.template_codes,
        clock=context.clock,
        connections=context.connections,
    )


def routes(
    provider: AliyunSmsProvider, events: SmsEvents, guard: CallbackGuard
) -> list[web.RouteDef]:
    """SmsReport and SmsUpReport behind the guard (`?key=`, allowlist, probes)."""
    callbacks = AliyunCallbacks(events, provider.clock)
    return guard.routes(REPORT_PATH, callbacks.report, accepted) + guard.routes(
        UP_PATH, callbacks.up, accepted
    )


PLUGIN = ProviderPlugin(
    name="aliyun",
    settings=AliyunSmsSettings,
    build=build,
    routes=routes,
    status_words=STATUS_WORDS,
    sends_templates=True,
    template_wording=dollar_names,
    callback_paths=(REPORT_PATH, UP_PATH),
    callback_docs=DOCS,
)
