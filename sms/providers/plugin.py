"""What a provider module hands the registry: `PLUGIN = ProviderPlugin(...)` at its end.

A plug-in names its provider, the pydantic settings class of its own block (reading its own
environment variables, e.g. `PINGJIA_TENCENT_SMS_*`), how to build the provider from that
block and a `BuildContext`, the callback routes it answers (behind the `CallbackGuard` the
registry hands it), and the map from its platform's status words to ours. The rest of pingjia
only sees the registry (sms/providers/registry.py); adding a provider is its module plus one
line there.

The guard: providers sign nothing on their callbacks, so every callback URL carries
`?key=PINGJIA_SMS_CALLBACK_KEY` (SPEC.md section 4). A missing or wrong key gets 404 (the route
does not exist, for whoever does not know the key) and nothing is read or stored. An optional
address allowlist (`callback_allow` of the provider's settings block) refuses other peers with
403. The connectivity probes providers send when a URL is registered (GET, HEAD, a POST with
an empty body) get the provider's acknowledgement and store nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from pydantic_settings import BaseSettings

from rating.networks import Network
from sms.providers import BuildContext, SmsEvents, SmsProvider, SmsStatus

log = structlog.get_logger("pingjia.sms")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CALLBACK_KEY_ENV = "PINGJIA_SMS_CALLBACK_KEY"
MIN_KEY_LENGTH = 16  # a secret in a URL: long enough not to be guessed

S = TypeVar("S", bound=BaseSettings)
P = TypeVar("P", bound=SmsProvider)


# Our templates' placeholders, `{name}` (the profile's [sms.templates]).
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def as_written(text: str) -> str:
    """A template's wording for a text provider: ours, as the profile writes it."""
    return text


def dollar_names(text: str) -> str:
    """Placeholders as `${name}` (Aliyun's template variables)."""
    return PLACEHOLDER.sub(r"${\1}", text)


def numbered(text: str) -> str:
    """Placeholders numbered `{1}`, `{2}`, … in the order they first appear, the order our
    params are built in (Tencent's template variables)."""
    order: dict[str, int] = {}
    for name in PLACEHOLDER.findall(text):
        order.setdefault(name, len(order) + 1)
    return PLACEHOLDER.sub(lambda m: "{" + str(order[m.group(1)]) + "}", text)


def check_endpoint(value: str, env: str, example: str) -> str:
    """A provider's API endpoint: an http(s) URL without a path; a ValueError naming `env`."""
    url = urlsplit(value.strip())
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
        raise ValueError(f"{env} must be an http(s) URL without a path, like {example}: {value!r}")
    return value.strip()


def check_extend_code(value: str | None, env: str) -> str | None:
    """A sub-number extension (扩展码): digits, or None when blank; a ValueError naming `env`."""
    code = (value or "").strip()
    if code and not code.isdigit():
        raise ValueError(f"{env} must be digits: {value!r}")
    return code or None


def _not_found() -> web.HTTPNotFound:
    # The answer of a route that does not exist (the app's error middleware words it), so
    # whoever lacks the key cannot tell a callback path from any other.
    return web.HTTPNotFound()


@dataclass(frozen=True)
class CallbackGuard:
    """Checks `?key=` and the address allowlist before a provider's callback handler runs.

    `key` None: no key is configured, so every callback is refused with 404 (the registry
    stops start-up before that for providers that have callbacks)."""

    key: str | None
    allowed: tuple[Network, ...] = ()
    provider: str = ""

    def admits_key(self, request: web.Request) -> bool:
        given = request.query.get("key", "")
        if not self.key or not given:
            return False
        return hmac.compare_digest(given.encode(), self.key.encode())

    def admits_peer(self, request: web.Request) -> bool:
        """Behind a proxy the peer is the proxy: list its address, let it filter the rest."""
        if not self.allowed:
            return True
        try:
            peer = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        return any(peer in network for network in self.allowed)

    def protect(self, handler: Handler, ack: Callable[[], web.StreamResponse]) -> Handler:
        """`handler` behind the key and the allowlist; probes get `ack()` and store nothing."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.admits_key(request):
                log.warning(
                    "sms callback without the right key refused",
                    provider=self.provider,
                    path=request.path,
                )
                raise _not_found()
            if not self.admits_peer(request):
                log.warning(
                    "sms callback from an address not allowed",
                    provider=self.provider,
                    path=request.path,
                )
                return web.json_response(
                    {
                        "error": {
                            "code": "forbidden",
                            "message": f"callbacks from {request.remote} are not allowed",
                        }
                    },
                    status=403,
                )
            if request.method in ("GET", "HEAD"):
                return ack()
            if request.method == "POST" and request.content_length == 0:
                return ack()  # a connectivity probe: an empty POST
            return await handler(request)

        return guarded

    def routes(
        self, path: str, handler: Handler, ack: Callable[[], web.StreamResponse]
    ) -> list[web.RouteDef]:
        """POST `path` to `handler`, GET and HEAD answered as probes; all behind the guard."""
        guarded = self.protect(handler, ack)
        return [
            web.post(path, guarded),
            web.get(path, guarded, allow_head=False),
            web.head(path, guarded),
        ]


@dataclass(frozen=True)
class Answer:
    """One answer of a callback, as /api/openapi.json shows it."""

    description: str
    media_type: str | None = "application/json"  # None: no body
    example: Any = None


@dataclass(frozen=True)
class CallbackDoc:
    """One callback route, as /api/openapi.json describes it (pingjia/api/pages_doc.py): what
    the platform posts, how a call proves it is the platform's (always `?key=`, the guard's;
    `auth` says what else), and what it is answered (`answers` by status; the first is also
    what a connectivity probe, GET or an empty POST, gets)."""

    summary: str
    auth: str
    body_type: str
    body: Mapping[str, Any]
    answers: Mapping[str, Answer]
    signature_header: str | None = None  # a header the platform signs each call with


def no_routes(provider: Any, events: SmsEvents, guard: CallbackGuard) -> list[web.RouteDef]:
    """For providers that post nothing to us (console; SMPP brings receipts on its session)."""
    return []


@dataclass(frozen=True)
class ProviderPlugin(Generic[S, P]):
    """One provider, as the registry sees it (module docstring)."""

    name: str
    settings: type[S]
    build: Callable[[S, BuildContext], P]
    routes: Callable[[P, SmsEvents, CallbackGuard], list[web.RouteDef]] = no_routes
    # The platform's delivery status words, in our vocabulary (SmsStatus); a word missing
    # here is not a delivery status (Twilio's `received`, say) and is not stored.
    status_words: Mapping[str, SmsStatus] = field(default_factory=dict)
    # Callback paths relative to PINGJIA_PUBLIC_URL, for the README and `pingjia sms`.
    callback_paths: Sequence[str] = ()
    # A template provider sends the templates a city had approved, by their codes
    # (BuildContext.template_codes), not our text: start-up stops when a template in use has
    # no code (sms/template_codes.py), and `pingjia sms templates` lists the codes.
    sends_templates: bool = False
    # A template's wording as the city registers it with the provider (its placeholders).
    template_wording: Callable[[str], str] = as_written
    # Every route `routes` mounts, by path, as /api/openapi.json describes it.
    callback_docs: Mapping[str, CallbackDoc] = field(default_factory=dict)

    @property
    def has_callbacks(self) -> bool:
        return bool(self.callback_paths)

    def read_settings(self, **overrides: Any) -> S:
        """The provider's settings block from the environment (and `.env`), `overrides` first."""
        return self.settings(**overrides)
