"""Lists of addresses and networks from one setting: trusted proxies, callback allowlists.

One parser for every such setting (PINGJIA_TRUSTED_PROXIES, each SMS provider's
`*_CALLBACK_ALLOW`), so they all read a list alike and refuse alike. It lives at the bottom of
the domain because the face, the SMS part and the settings all need it and may not import each
other. It knows nothing of where its text came from but the variable name each caller gives.

The form: IPv4 or IPv6 addresses and CIDR blocks, separated by commas and/or blanks
(`10.0.0.5, 10.0.0.0/8 ::1`). Refused, each with a message naming the variable and the entry:
anything that is not an address or a block; a block with host bits set (`10.0.0.5/8`: the
reader cannot tell whether one host or the whole block was meant, and a guess widens an
allowlist); and a value that names nothing but is not blank (`,`): for an allowlist, no entry
means "everyone", which a stray comma must not say. Empty entries between commas are skipped.
"""

from __future__ import annotations

import ipaddress
import re

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EXAMPLES = "e.g. 10.0.0.5, 10.0.0.0/8, 2001:db8::/32"
_SEPARATORS = re.compile(r"[,\s]+")


def parse_networks(text: str, env: str) -> tuple[Network, ...]:
    """The networks `text` lists; a ValueError naming `env` and the entry when one is bad."""
    entries = [entry for entry in _SEPARATORS.split(text) if entry]
    if not entries and text.strip():
        raise ValueError(
            f"{env}: {text!r} names no address; leave it empty for none, or list them "
            f"separated by commas ({EXAMPLES})"
        )
    return tuple(_network(entry, env) for entry in entries)


def _network(entry: str, env: str) -> Network:
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError:
        pass
    try:
        widened = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{env}: {entry!r} is not an address or a network ({EXAMPLES})") from None
    address = entry.split("/", 1)[0]
    raise ValueError(
        f"{env}: {entry!r} has host bits set: write {widened} for the whole network, "
        f"or {address} for the one address"
    )
