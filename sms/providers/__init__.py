"""SMS providers behind one interface: a template id plus parameters (PLATFORM.md).

Text providers (console, Twilio, an SMPP gateway) send `text`, the rendered template with its
【signature】; template providers (Aliyun, Tencent) pass `template` and `params` through to a
template they had approved. `reference` is our id of the message: providers that take an out
id (Aliyun's OutId) carry it, so a receipt finds its message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

# pingjia's own delivery vocabulary, stored whatever the provider: a message's status only
# moves forward (queued < sent < delivered|failed|undelivered); each provider maps its words.
SmsStatus = Literal["queued", "sent", "delivered", "failed", "undelivered"]


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


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on one message we sent, in our vocabulary."""

    provider_id: str  # SendReceipt.provider_id of that message (Aliyun biz_id, Tencent sid, …)
    status: SmsStatus
    error: str | None = None  # the provider's error code or text, short, for the operator
    reference: str | None = None  # our OutboundSms.reference, when the provider echoes it


@dataclass(frozen=True)
class InboundReply:
    """A citizen's message as a provider delivered it."""

    dedup_key: str  # the same on every repeat of this reply (MessageSid, sequence_id, …)
    sender: str  # the citizen's number as the provider gave it
    text: str
    to_address: str = ""  # the number it was sent to, extension included, when known
    extension: str | None = None  # the 扩展码 when the provider gives it apart
    sent_at: datetime | None = None  # when the citizen sent it, when the provider says


class SmsEvents(Protocol):
    """Where a provider hands what it hears (the SMS service implements this)."""

    async def delivery(self, report: DeliveryReport, at: datetime) -> bool:
        """Record a delivery report; False when no message of ours has that id."""
        ...

    async def reply(self, reply: InboundReply, at: datetime) -> None:
        """Store a reply once per dedup_key (repeats are no-ops) and have it handled."""
        ...


class BuildContext(Protocol):
    """What the registry hands every provider's `build`, besides its own settings block."""

    @property
    def public_url(self) -> str: ...
    @property
    def signature(self) -> str: ...
    @property
    def template_codes(self) -> Mapping[str, str]: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def connections(self) -> int: ...
    @property
    def callback_key(self) -> str | None:
        """PINGJIA_SMS_CALLBACK_KEY, for providers that tell the platform their callback URL
        with each message (Twilio's StatusCallback)."""
        ...


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
