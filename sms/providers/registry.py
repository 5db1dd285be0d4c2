"""The SMS providers pingjia knows, by the name PINGJIA_SMS_PROVIDER gives them.

Adding a provider is its module (ending with `PLUGIN = ProviderPlugin(...)`) and one line
here; nothing else in pingjia names a vendor.
"""

from __future__ import annotations

from typing import Any

from sms.providers import aliyun, console, smpp, tencent, twilio
from sms.providers.plugin import CallbackDoc, ProviderPlugin

PLUGINS: dict[str, ProviderPlugin[Any, Any]] = {
    plugin.name: plugin
    for plugin in (
        console.PLUGIN,
        twilio.PLUGIN,
        tencent.PLUGIN,
        aliyun.PLUGIN,
        smpp.PLUGIN,
    )
}


def names() -> tuple[str, ...]:
    return tuple(PLUGINS)


def check_name(name: str) -> str:
    """`name` when a provider has it; a ValueError naming PINGJIA_SMS_PROVIDER otherwise."""
    if name not in PLUGINS:
        raise ValueError(
            f"PINGJIA_SMS_PROVIDER={name!r} is no SMS provider; one of: {', '.join(PLUGINS)}"
        )
    return name


def plugin(name: str) -> ProviderPlugin[Any, Any]:
    return PLUGINS[check_name(name)]


def callback_doc(path: str) -> CallbackDoc | None:
    """How the callback route at `path` is described, whichever provider mounts it."""
    for each in PLUGINS.values():
        if path in each.callback_docs:
            return each.callback_docs[path]
    return None
