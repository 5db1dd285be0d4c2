"""The console provider: prints each message (number masked) and keeps it, for development.

Citizens' replies come in on `POST /sms/console/reply?key=PINGJIA_SMS_CALLBACK_KEY`, a JSON
object `{id, from, to?, body}` (what `pingjia sms reply` posts), answered `{"ok": true}`
once stored. Without PINGJIA_SMS_CALLBACK_KEY the route answers 404 like any callback without
its key, and the console provider needs nothing else to start.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rating.privacy import mask_phone
from rating.text import unstorable
from rating.words import input_problem
from sms.providers import (
    BuildContext,
    InboundReply,
    OutboundSms,
    Recorded,
    SendReceipt,
    SmsEvents,
)
from sms.providers.plugin import Answer, CallbackDoc, CallbackGuard, ProviderPlugin

REPLY_PATH = "/sms/console/reply"
REPLY_MAX_BYTES = 16 * 1024


class ConsoleSmsSettings(BaseSettings):
    """PINGJIA_CONSOLE_SMS_*: the number the printed messages appear to come from."""

    model_config = SettingsConfigDict(
        env_prefix="PINGJIA_CONSOLE_SMS_", env_file=".env", extra="ignore"
    )

    sender: str = Field(
        "10690012345", pattern=r"^\d{3,20}$", description="our number (a 106 number)"
    )


class ConsoleProvider:
    """Prints instead of sending; `sent` holds every message in order."""

    name = "console"

    def __init__(
        self,
        sender: str = "10690012345",
        stream: TextIO | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sender = sender
        self.stream = stream
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sent: list[Recorded] = []

    async def send(self, message: OutboundSms) -> SendReceipt:
        self.sent.append(
            Recorded(
                message.to, message.text, message.template, dict(message.params), message.ext_code
            )
        )
        sender = self.sender + (message.ext_code or "")
        print(
            f"[sms {sender} → {mask_phone(message.to)}] {message.text}",
            file=self.stream or sys.stdout,
            flush=True,
        )
        return SendReceipt(f"console-{uuid.uuid4().hex}", "sent")

    def extension(self, to_address: str) -> str | None:
        if to_address.startswith(self.sender) and to_address[len(self.sender) :].isdigit():
            return to_address[len(self.sender) :]
        return None

    async def close(self) -> None:
        return None


def build(settings: ConsoleSmsSettings, context: BuildContext) -> ConsoleProvider:
    return ConsoleProvider(settings.sender, clock=context.clock)


class ConsoleReply(BaseModel):
    """A reply posted to the console provider."""

    id: str = Field(min_length=1, max_length=64, description="the same on every repeat")
    sender: str = Field(alias="from", min_length=1, max_length=32)
    to: str = Field("", max_length=32)
    body: str = Field(max_length=1600)


def _refused(message: str) -> web.Response:
    return web.json_response({"error": {"code": "bad_request", "message": message}}, status=400)


def routes(
    provider: ConsoleProvider, events: SmsEvents, guard: CallbackGuard
) -> list[web.RouteDef]:
    """The reply route, behind the key guard (404 without a configured key)."""

    async def reply(request: web.Request) -> web.StreamResponse:
        raw = await request.content.read(REPLY_MAX_BYTES + 1)
        if len(raw) > REPLY_MAX_BYTES:
            return _refused(f"正文超过 {REPLY_MAX_BYTES} 字节。")
        try:
            posted = ConsoleReply.model_validate_json(raw)
        except ValidationError as exc:
            # Chinese from the catalogue that renders the API's validation errors.
            problems = "；".join(
                f"{'.'.join(str(p) for p in e['loc']) or '正文'}："
                f"{input_problem(e['type'], e.get('ctx'))}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            return _refused(f"控制台短信回复应为 {{id, from, to?, body}}：{problems}")
        for name, value in (("id", posted.id), ("from", posted.sender), ("to", posted.to),
                            ("body", posted.body)):  # fmt: skip
            if (problem := unstorable(value)) is not None:
                return _refused(f"{name}：{problem}，无法保存。")
        message = InboundReply(posted.id, posted.sender, posted.body, posted.to)
        await events.reply(message, provider.clock())
        return web.json_response({"ok": True})

    return guard.routes(REPLY_PATH, reply, lambda: web.json_response({"ok": True}))


DOCS = {
    REPLY_PATH: CallbackDoc(
        "Console provider: a citizen's reply typed in by a person (`pingjia sms reply`)",
        "the secret `?key=` (PINGJIA_SMS_CALLBACK_KEY); without one set, every call is 404",
        "application/json",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "from": {"type": "string", "minLength": 1, "maxLength": 32},
                "to": {"type": "string", "maxLength": 32},
                "body": {"type": "string", "maxLength": 1600},
            },
            "required": ["id", "from", "body"],
        },
        {
            "200": Answer("stored once per id, handled in the background", example={"ok": True}),
            "400": Answer("not {id, from, to?, body}, or a field that cannot be stored"),
        },
    )
}
PLUGIN = ProviderPlugin(
    name="console", settings=ConsoleSmsSettings, build=build, routes=routes, callback_docs=DOCS
)  # no callback_paths: nothing to register anywhere, and no key needed to start
