"""The OpenAPI entries of what is not the JSON API: the citizen's rating page, the SMS
webhooks and the console, so the document names every route the server answers.

Pages answer HTML (errors too, with 4xx); the webhooks answer JSON errors like the API.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pingjia.api.routing import NON_BLANK, STORABLE, path_parameters, unavailable
from rating.policy.rules import MAX_REASON_CHARS
from sms.providers.console import REPLY_PATH as CONSOLE_REPLY
from sms.providers.console import ConsoleReply
from sms.providers.twilio_callbacks import INBOUND_PATH as TWILIO_INBOUND
from sms.providers.twilio_callbacks import STATUS_PATH as TWILIO_STATUS

HTML = {"text/html": {"schema": {"type": "string"}}}
ERROR = "#/components/schemas/ErrorOut"
FORM = "application/x-www-form-urlencoded"
TEXT = {"type": "string", "maxLength": 4000, "pattern": STORABLE}

RATING_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "csrf": {"type": "string", "pattern": STORABLE, "maxLength": 64},
        "level": {"type": "string", "enum": ["1", "2", "3", "4", "5"]},
        "tag": {"type": "array", "items": {"type": "string", "maxLength": 64}},
        "reason": {"type": "string", "maxLength": MAX_REASON_CHARS, "pattern": STORABLE},
    },
}
TWILIO_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "MessageSid": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NON_BLANK},
        "From": {"type": "string", "minLength": 1, "maxLength": 32, "pattern": NON_BLANK},
        "To": {"type": "string", "maxLength": 32, "pattern": STORABLE},
        "Body": {"type": "string", "maxLength": 1600, "pattern": STORABLE},
        "MessageStatus": {"type": "string", "maxLength": 32, "pattern": STORABLE},
    },
    "required": ["MessageSid"],
}
# The console provider's reply, as its model reads it; text without NUL (refused, 400).
CONSOLE_REPLY_BODY = ConsoleReply.model_json_schema(by_alias=True)
for _field in CONSOLE_REPLY_BODY["properties"].values():
    _field["pattern"] = STORABLE
CONSOLE_FORM: dict[str, Any] = {
    "type": "object",
    "description": "the page's own form: its `csrf` value and the fields it shows",
    "properties": {"csrf": {"type": "string", "maxLength": 64, "pattern": STORABLE}},
    "additionalProperties": TEXT,
}


def _page(summary: str, tag: str, path: str, statuses: dict[str, str]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description in statuses.items():
        entry: dict[str, Any] = {"description": description}
        if status not in {"301", "303"}:  # redirects carry no page
            entry["content"] = HTML
        responses[status] = entry
    responses["4XX"] = {
        "description": "refused: the page says why (a path no page has: the JSON error)",
        "content": {**HTML, "application/json": {"schema": {"$ref": ERROR}}},
    }
    responses["503"] = {**unavailable({"type": "string"}), "content": HTML}
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters := path_parameters(path):
        operation["parameters"] = parameters
    return operation


def _with_form(operation: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    operation["requestBody"] = {"required": False, "content": {FORM: {"schema": schema}}}
    return operation


KEY_PARAMETER: dict[str, Any] = {
    "name": "key",
    "in": "query",
    "required": True,
    "description": "PINGJIA_SMS_CALLBACK_KEY: a missing or wrong key gets 404, the answer of "
    "a path that does not exist, and nothing is read",
    "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": STORABLE},
}
# What each provider posts (the provider's own format); the others' are in docs/sms-*.md.
CALLBACK_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    TWILIO_INBOUND: (FORM, TWILIO_FORM),
    TWILIO_STATUS: (FORM, TWILIO_FORM),
    CONSOLE_REPLY: ("application/json", CONSOLE_REPLY_BODY),
}
TWILIO_SIGNATURE: dict[str, Any] = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": True,
    "description": "Twilio's signature over the URL and the form; a bad or missing one: 403",
    "schema": {"type": "string", "maxLength": 128},
}


def _callback(path: str, method: str) -> dict[str, Any]:
    """An SMS provider's callback: behind `?key=`; GET and HEAD are the provider's
    connectivity probes (answered, nothing stored), POST carries the provider's own body."""
    error = {"application/json": {"schema": {"$ref": ERROR}}}
    operation: dict[str, Any] = {
        "summary": f"SMS provider callback {path} (behind its ?key=)",
        "tags": ["sms"],
        "parameters": [KEY_PARAMETER],
        "responses": {
            "200": {"description": "received (the provider's own acknowledgement)"},
            "204": {"description": "receipt recorded"},
            "4XX": {"description": "no key or a wrong one (404), a bad body", "content": error},
            "503": unavailable({"$ref": ERROR}),
        },
    }
    if method != "post":
        operation["description"] = "a connectivity probe: acknowledged, nothing stored"
        return operation
    media, schema = CALLBACK_BODIES.get(path, ("application/json", {}))
    operation["requestBody"] = {"required": True, "content": {media: {"schema": schema}}}
    if path in (TWILIO_INBOUND, TWILIO_STATUS):
        operation["parameters"] = [KEY_PARAMETER, TWILIO_SIGNATURE]
        operation["description"] = (
            "Twilio's own signature is checked after the key: without TWILIO_AUTH_TOKEN set, "
            "every call is refused (403)"
        )
    return operation


def page_paths(app: web.Application) -> dict[str, dict[str, Any]]:
    """Every non-API route on `app` (rating page, webhooks, console), as OpenAPI paths."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        info = route.resource.canonical if route.resource is not None else ""
        method = route.method.lower()
        if method == "head" or not info or info.startswith("/api/"):
            continue
        if info in {"/healthz", "/metrics"}:
            continue
        if info.startswith("/r/"):
            operation = _page(
                "The citizen's rating page (from the SMS link)",
                "rating page",
                info,
                {"200": "the form, or a page saying the link is used or expired"},
            )
            if method == "post":
                _with_form(operation, RATING_FORM)
        elif info.startswith("/sms/"):
            operation = _callback(info, method)
        elif info.startswith("/console"):
            operation = _page(
                f"Console: {info.removeprefix('/console') or 'home'}",
                "console",
                info,
                {"301": "to /console (the address without the slash)"}
                if info == "/console/"
                else {"200": "the page", "303": "to the sign-in, or back to the page after a step"},
            )
            if method == "post":
                _with_form(operation, CONSOLE_FORM)
        else:
            continue
        paths.setdefault(info, {})[method] = operation
    return paths
