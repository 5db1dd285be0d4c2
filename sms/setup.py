"""The chosen SMS provider, from the registry: its settings block read, the provider built,
its callbacks guarded (the composition root and the HTTP app call this).

A missing or bad setting stops start-up with one line naming the environment variables, and
so does a provider with callbacks but no PINGJIA_SMS_CALLBACK_KEY: its callback URLs would
all be refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from rating.errors import DomainError
from rating.networks import parse_networks
from sms.providers import SmsEvents, SmsProvider
from sms.providers.plugin import CALLBACK_KEY_ENV, CallbackGuard, ProviderPlugin
from sms.providers.registry import plugin as registered


@dataclass(frozen=True)
class Context:
    """The BuildContext every provider's `build` gets besides its settings block."""

    public_url: str
    signature: str
    clock: Callable[[], datetime]
    connections: int = 100
    callback_key: str | None = None
    template_codes: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Starts(Protocol):
    """A provider that opens something of its own at start (an SMPP session)."""

    async def start(self, events: SmsEvents) -> None: ...


@dataclass(frozen=True)
class ProviderSetup:
    """The chosen provider with its plug-in, its settings block and its callbacks' guard."""

    plugin: ProviderPlugin[Any, Any]
    block: BaseSettings
    provider: SmsProvider
    guard: CallbackGuard

    def routes(self, events: SmsEvents) -> list[web.RouteDef]:
        """The provider's callback routes, behind the guard, handing to `events`."""
        return self.plugin.routes(self.provider, events, self.guard)

    async def start(self, events: SmsEvents) -> None:
        """Start what the provider opens itself (binding an SMPP session); most open nothing."""
        if isinstance(self.provider, Starts):
            await self.provider.start(events)


def env_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Each field of a settings block (and its aliases) to the variable that sets it."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    names: dict[str, str] = {}
    for name, info in settings.model_fields.items():
        alias = info.validation_alias
        env = (
            str(alias.choices[0])
            if isinstance(alias, AliasChoices)
            else str(alias or f"{prefix}{name}")
        ).upper()
        names[name] = env
        if isinstance(alias, AliasChoices):
            names.update({str(choice): env for choice in alias.choices})
    return names


def read_block(plugin: ProviderPlugin[Any, Any], **overrides: Any) -> BaseSettings:
    """The provider's settings block from the environment; one DomainError line otherwise."""
    try:
        block: BaseSettings = plugin.read_settings(**overrides)
        return block
    except ValidationError as exc:
        names = env_names(plugin.settings)
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            loc = [str(part) for part in error["loc"]]
            env = names.get(loc[0]) if loc else None
            if env and not message.upper().startswith(env):
                problems.append(f"{env}: {message}")
            else:
                problems.append(message)
        prefix = f"PINGJIA_SMS_PROVIDER={plugin.name} needs"
        said = "; ".join(p.removeprefix(prefix).strip() for p in problems)
        raise DomainError(f"{prefix} its settings: {said}", code="bad_settings") from None


def guard_for(
    plugin: ProviderPlugin[Any, Any], block: BaseSettings, key: str | None
) -> CallbackGuard:
    """The guard of a provider's callbacks: the key, and `callback_allow` of its block."""
    allow = getattr(block, "callback_allow", "") or ""
    env = env_names(type(block)).get("callback_allow", "callback_allow")
    try:
        allowed = parse_networks(str(allow), env)
    except ValueError as exc:
        raise DomainError(str(exc), code="bad_settings") from None
    return CallbackGuard(key or None, allowed, plugin.name)


@dataclass(frozen=True)
class ChosenProvider:
    """The provider PINGJIA_SMS_PROVIDER names and its settings block, checked, not built:
    start-up stops here, before the database is touched, on a bad setting."""

    plugin: ProviderPlugin[Any, Any]
    block: BaseSettings
    guard: CallbackGuard

    def build(self, context: Context) -> ProviderSetup:
        """The provider, built inside the running loop (it may open a session)."""
        provider = self.plugin.build(self.block, context)
        return ProviderSetup(self.plugin, self.block, provider, self.guard)


def choose_provider(
    name: str, callback_key: str | None, *, block: BaseSettings | None = None
) -> ChosenProvider:
    """The provider `name` (PINGJIA_SMS_PROVIDER) with its block, read from the environment
    unless given; DomainError, one line naming the variables, on anything missing or bad."""
    try:
        plugin = registered(name.strip().lower())
    except ValueError as exc:
        raise DomainError(str(exc), code="bad_settings") from None
    if plugin.has_callbacks and not callback_key:
        raise DomainError(
            f"PINGJIA_SMS_PROVIDER={plugin.name} needs {CALLBACK_KEY_ENV}: the secret its "
            "callback URLs carry as ?key=",
            code="bad_settings",
        )
    if block is None:
        block = read_block(plugin)
    elif not isinstance(block, plugin.settings):
        raise DomainError(
            f"the settings given for PINGJIA_SMS_PROVIDER={plugin.name} are a "
            f"{type(block).__name__}, not its {plugin.settings.__name__}",
            code="bad_settings",
        )
    return ChosenProvider(plugin, block, guard_for(plugin, block, callback_key))


def build_provider(
    name: str, context: Context, *, block: BaseSettings | None = None
) -> ProviderSetup:
    """choose_provider, then build it (for callers with nothing to do in between)."""
    return choose_provider(name, context.callback_key, block=block).build(context)
