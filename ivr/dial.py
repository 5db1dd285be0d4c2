"""Dial strings of outbound calls: templates from the settings, filled per call.

A city's trunk and agents' phones have their own names and technologies (`PJSIP/{number}@trunk`,
`SIP/{number}@carrier`, `Local/{extension}@agents`…), so the Originate's channel comes from
`PINGJIA_OUTBOUND_DIAL` and `PINGJIA_AGENT_DIAL`. A template is checked at start-up: it must use
its one placeholder, no other, and nothing AMI would read as a new header or a list separator.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

# AMI splits Variable values on "," and a line break would start a new header.
FORBIDDEN = frozenset(",\r\n\t ")


class DialTemplateError(ValueError):
    """A dial template pingjia cannot use; the message names the setting and the fault."""


@dataclass(frozen=True)
class DialTemplate:
    template: str
    placeholder: str
    setting: str

    @classmethod
    def parse(cls, template: str, placeholder: str, setting: str) -> DialTemplate:
        """Check a template; `placeholder` must appear, nothing else may."""
        example = f"e.g. PJSIP/{{{placeholder}}}@trunk"
        try:
            fields = [
                (name, spec, conv)
                for _, name, spec, conv in string.Formatter().parse(template)
                if name is not None
            ]
        except ValueError as exc:
            raise DialTemplateError(
                f"{setting} {template!r} is not a valid template ({exc}); {example}"
            ) from None
        names = {name for name, _, _ in fields}
        unknown = sorted(names - {placeholder})
        if unknown:
            raise DialTemplateError(
                f"{setting} {template!r} uses unknown placeholder(s) "
                f"{', '.join('{' + n + '}' for n in unknown)}; only {{{placeholder}}} is known"
            )
        if placeholder not in names:
            raise DialTemplateError(
                f"{setting} {template!r} has no {{{placeholder}}} placeholder; {example}"
            )
        if any(spec or conv for _, spec, conv in fields):
            raise DialTemplateError(
                f"{setting} {template!r}: write {{{placeholder}}} without a format or conversion"
            )
        bad = sorted(FORBIDDEN & set(template))
        if bad or "/" not in template:
            raise DialTemplateError(
                f"{setting} {template!r} must be TECH/resource without blanks or commas; {example}"
            )
        return cls(template, placeholder, setting)

    def fill(self, value: str) -> str:
        return self.template.format(**{self.placeholder: value})

    def __str__(self) -> str:
        return f"{self.setting}={self.template}"
