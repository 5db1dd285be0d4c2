"""Choosing the SMS provider from plain settings (the composition root calls this)."""

from __future__ import annotations

from rating.errors import DomainError
from sms.providers import SmsProvider
from sms.providers.console import ConsoleProvider
from sms.webhooks import STATUS_PATH


def build_provider(
    kind: str,
    public_url: str,
    *,
    account_sid: str | None = None,
    auth_token: str | None = None,
    sender: str | None = None,
    api_url: str | None = None,
    connections: int = 100,
) -> SmsProvider:
    """The provider PINGJIA_SMS_PROVIDER names; Twilio needs its three settings."""
    if kind == "console":
        return ConsoleProvider()
    if kind == "twilio":
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", account_sid),
                ("TWILIO_AUTH_TOKEN", auth_token),
                ("TWILIO_FROM", sender),
            )
            if not value
        ]
        if missing:
            raise DomainError(
                f"PINGJIA_SMS_PROVIDER=twilio needs {', '.join(missing)}", code="bad_settings"
            )
        from sms.providers.twilio import TwilioProvider  # the SDK loads only when used

        assert account_sid and auth_token and sender
        return TwilioProvider(
            account_sid,
            auth_token,
            sender,
            public_url.rstrip("/") + STATUS_PATH,
            api_url=api_url,
            connections=connections,
        )
    raise DomainError(f"unknown SMS provider {kind!r}: console or twilio", code="bad_settings")
