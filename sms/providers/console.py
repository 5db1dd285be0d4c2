"""The console provider: prints each message (number masked) and keeps it, for development."""

from __future__ import annotations

import sys
import uuid
from typing import TextIO

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rating.privacy import mask_phone
from sms.providers import BuildContext, OutboundSms, Recorded, SendReceipt
from sms.providers.plugin import ProviderPlugin


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

    def __init__(self, sender: str = "10690012345", stream: TextIO | None = None) -> None:
        self.sender = sender
        self.stream = stream
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
    return ConsoleProvider(settings.sender)


PLUGIN = ProviderPlugin(name="console", settings=ConsoleSmsSettings, build=build)
