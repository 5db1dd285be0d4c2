"""SMS providers behind one interface: a template id plus parameters (PLATFORM.md).

Text providers (console, Twilio, an SMPP gateway) send `text`, the rendered template with its
【signature】; template providers (Aliyun, Tencent) pass `template` and `params` through to a
template they had approved. `reference` is our id of the message: providers that take an out
id (Aliyun's OutId) carry it, so a receipt finds its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutboundSms:
    """One message to send."""

    to: str  # normalized number (rating.privacy.normalize_phone)
    template: str
    params: Mapping[str, str]
    text: str
    reference: str
    ext_code: str | None = None  # sub-number extension (扩展码) where the provider has one


@dataclass(frozen=True)
class SendReceipt:
    """The provider took the message: its id and first status."""

    provider_id: str
    status: str = "queued"


class ProviderError(Exception):
    """The provider refused or failed; `retryable` says whether a later try may work."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SmsProvider(Protocol):
    """What the SMS service needs from a provider."""

    name: str

    async def send(self, message: OutboundSms) -> SendReceipt:
        """Hand one message to the provider; raise ProviderError when it does not take it."""
        ...

    def extension(self, to_address: str) -> str | None:
        """The extension code a reply was addressed to (our number + code), or None."""
        ...

    async def close(self) -> None:
        """Release connections; safe to call twice."""
        ...


@dataclass
class Recorded:
    """What the console provider keeps of each message (tests and development read it)."""

    to: str
    text: str
    template: str
    params: dict[str, str] = field(default_factory=dict)
    ext_code: str | None = None
