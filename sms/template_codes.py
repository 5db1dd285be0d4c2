"""Our SMS template ids and the codes template providers approved for them (SPEC.md section 4).

A template provider (`ProviderPlugin.sends_templates`: Aliyun, Tencent) sends only templates
it reviewed, by the code it gave each: the profile maps our template ids to those codes per
provider (`[sms.template_codes.<provider>]`) and `PINGJIA_SMS_TEMPLATE_CODES` (a JSON object,
template id -> code) overrides that mapping per template. `check_template_codes` is what
start-up calls: with a template provider, a template in use without a code stops it, naming
the templates and the provider, so a city learns at deploy time, not when the first
invitation fails. How each provider wants a wording registered is its plug-in's
`template_wording`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from rating.errors import DomainError
from rating.policy.profile import Profile
from sms.providers.plugin import ProviderPlugin

ENV = "PINGJIA_SMS_TEMPLATE_CODES"
CODE = re.compile(r"^\S{1,64}$")


def parse_override(raw: str | None) -> dict[str, str]:
    """PINGJIA_SMS_TEMPLATE_CODES as a mapping; ValueError naming the variable and the fault."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f'{ENV} must be a JSON object like {{"invitation": "SMS_123"}}')
    codes: dict[str, str] = {}
    for name, code in value.items():
        if not isinstance(code, str) or not CODE.match(code):
            raise ValueError(
                f"{ENV}: the code of {name!r} must be a string of 1-64 characters without "
                f"spaces, got {code!r}"
            )
        codes[name] = code
    return codes


def templates_in_use(profile: Profile) -> list[str]:
    """The templates this profile may send: all of them, the 追评 invitation only when on."""
    names = sorted(profile.sms.templates)
    if not profile.second_rating:
        names.remove("second_invitation")
    return names


def template_codes(profile: Profile, provider: str, override: Mapping[str, str]) -> dict[str, str]:
    """The profile's codes for `provider`, each overridden by `override`; DomainError for an
    override naming a template the profile does not have."""
    unknown = sorted(set(override) - set(profile.sms.templates))
    if unknown:
        raise DomainError(
            f"{ENV} names templates the profile {profile.name!r} does not have: "
            f"{', '.join(unknown)} (known: {', '.join(sorted(profile.sms.templates))})",
            code="bad_settings",
        )
    return {**profile.sms.template_codes.get(provider, {}), **override}


def check_template_codes(
    profile: Profile, plugin: ProviderPlugin[Any, Any], override: str | None
) -> dict[str, str]:
    """The codes the provider sends by (profile + PINGJIA_SMS_TEMPLATE_CODES); DomainError when
    the override is malformed or, for a template provider, a template in use has no code."""
    provider = plugin.name
    try:
        codes = template_codes(profile, provider, parse_override(override))
    except ValueError as exc:
        raise DomainError(str(exc), code="bad_settings") from None
    if plugin.sends_templates:
        missing = [name for name in templates_in_use(profile) if not codes.get(name)]
        if missing:
            raise DomainError(
                f"PINGJIA_SMS_PROVIDER={provider}: no {provider} template code for the SMS "
                f"template{'s' if len(missing) > 1 else ''} {', '.join(missing)}; register "
                f"{'them' if len(missing) > 1 else 'it'} with {provider} (`pingjia sms templates "
                f"--provider {provider}`) and map the codes in [sms.template_codes.{provider}] "
                f"of the profile or in {ENV}",
                code="bad_settings",
            )
    return codes
