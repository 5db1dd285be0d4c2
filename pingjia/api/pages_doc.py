"""The OpenAPI entries of what is not the JSON API: the citizen's rating page, the SMS
providers' callbacks and the console, so the document names every route the server answers.

Pages answer HTML (errors too, with 4xx); the callbacks answer JSON errors like the API. Each
callback is described by the plug-in of the provider that mounts it (`callback_docs`): what its
platform posts, how a call is authenticated (the `?key=` always, Twilio's signature too) and
what the platform is answered; this module names no provider.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pingjia.api.routing import STORABLE, path_parameters, text_rules, unavailable
from rating.policy.rules import MAX_REASON_CHARS
from sms.providers.plugin import Answer, CallbackDoc
from sms.providers.registry import callback_doc

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


ERROR_JSON = {"application/json": {"schema": {"$ref": ERROR}}}
KEY = {
    "name": "key",
    "in": "query",
    "required": True,
    "description": "PINGJIA_SMS_CALLBACK_KEY, as in the URL registered with the provider",
    "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": STORABLE},
}
REFUSED = {
    "404": {
        "description": "a missing or wrong key: answered as a path no route has, nothing stored",
        "content": ERROR_JSON,
    },
    "403": {
        "description": "a peer outside the provider's callback allowlist, when one is set",
        "content": ERROR_JSON,
    },
}


def _answer(status: str, answer: Answer) -> dict[str, Any]:
    entry: dict[str, Any] = {"description": answer.description}
    if answer.media_type is None:
        return entry
    if status.startswith(("4", "5")) and answer.media_type == "application/json":
        entry["content"] = ERROR_JSON
        return entry
    schema: dict[str, Any] = (
        {"type": "object"} if answer.media_type == "application/json" else {"type": "string"}
    )
    body: dict[str, Any] = {"schema": schema}
    if answer.example is not None:
        body["example"] = answer.example
    entry["content"] = {answer.media_type: body}
    return entry


def _callback(path: str, method: str) -> dict[str, Any]:
    """An SMS provider's callback, as its plug-in describes it (sms/providers/registry.py):
    authenticated by `?key=` and whatever the provider adds, answered as its platform wants."""
    doc = callback_doc(path)
    if doc is None:  # every plug-in documents its routes (tests/test_sms_callback_docs.py)
        doc = CallbackDoc(f"SMS provider callback {path}", "the secret `?key=`", FORM, {}, {})
    answers = {status: _answer(status, a) for status, a in doc.answers.items()}
    operation: dict[str, Any] = {
        "summary": doc.summary,
        "tags": ["sms"],
        "description": f"Authenticated by {doc.auth}.",
        "parameters": [KEY],
    }
    if method == "get":  # the connectivity probe providers send when a URL is registered
        operation["summary"] = f"Connectivity probe: {doc.summary}"
        operation["description"] += " A probe (GET, or an empty POST) stores nothing."
        ok = next((s for s in answers if s.startswith("2")), None)
        answers = {ok: answers[ok]} if ok else {}
    else:
        if doc.signature_header:
            operation["parameters"] = [
                KEY,
                {
                    "name": doc.signature_header,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 128},
                },
            ]
        operation["requestBody"] = {
            "required": True,
            # The plug-in's fields, with the rules every stored text obeys (no NUL, not blank).
            "content": {doc.body_type: {"schema": text_rules(dict(doc.body))}},
        }
    operation["responses"] = {
        **{s: r for s, r in REFUSED.items() if s not in answers},
        **answers,
        "503": unavailable({"$ref": ERROR}),
    }
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
