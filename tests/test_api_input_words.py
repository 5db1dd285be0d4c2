"""Every validation error the API can give reads in Chinese: pydantic's `type` and `loc` stay
for programs, the `message` is rendered from rating/words.py's INPUT_PROBLEMS, and no English
sentence of pydantic's (or of our own validators') reaches the body.

Bad inputs tried, each against the route named (an admin token may call every route):
- POST /api/v1/services: an empty object (missing), an unknown field (extra_forbidden), a
  number as phone (string_type), an empty case number (string_too_short), a 200-character
  agency (string_too_long), a case number with a blank (string_pattern_mismatch), an unknown
  kind (literal_error), a time without offset (timezone_aware), a number as time
  (time_not_text), `yesterday`, 30 February and 25 o'clock (datetime_from_date_parsing), null
  as time (datetime_type);
- POST /api/v1/ratings: a level as text and as 4.5 (int_type), 0 and 9 (greater_than_equal,
  less_than_equal), tags as text (list_type), 30 tags (too_long), a number among the tags;
- POST /api/v1/dead-letters/retry: `all` as text (bool_type), nothing named
  (retry_nothing_named), `all` with ids (retry_all_alone), 0 as an id;
- POST /api/v1/tickets/X/extensions, /not-adopt, /bridge/…/updates, PUT agency-contacts,
  POST calls/callback: missing and wrong-typed fields, an unknown action, a bad extension;
- GET /api/v1/tickets, /alerts, /calls, /evaluations, /stats, /dead-letters: `limit=abc`
  (int_parsing), a 30-digit limit (less_than_equal), `limit=0`, `overdue=maybe`
  (bool_parsing), an unknown status, `from=x`, a missing `to`;
- a body that is not JSON (invalid_json, with a json_invalid detail).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from pingjia.composition import Services
from rating.words import INPUT_PROBLEM_FALLBACK, INPUT_PROBLEMS
from tests import sqlite_app

database_url = sqlite_app.database_url  # the app on SQLite only
client = sqlite_app.client

CJK = re.compile(r"[\u4e00-\u9fff]")
# Two English words in a row outside a quoted value: a sentence (pydantic's "Field required",
# "Input should be …"), not an identifier such as a field name or `true`.
ENGLISH_SENTENCE = re.compile(r"\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\b")

GOOD_SERVICE = {
    "case_no": "C1",
    "kind": "complaint",
    "phone": "13812345678",
    "completed_at": "2026-11-20T17:30:00+08:00",
}
BODIES: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/services", {}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "unknown": 1, "phone": 13812345678}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "case_no": "", "agency": "局" * 200}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "case_no": "C 1", "kind": "praise"}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "completed_at": "2026-11-20T17:30:00"}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "completed_at": 1790000000}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "completed_at": "yesterday"}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "completed_at": "2026-02-30T10:00:00+08:00"}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "completed_at": "2026-02-03T25:00:00+08:00"}),
    ("POST", "/api/v1/services", {**GOOD_SERVICE, "completed_at": None}),
    ("POST", "/api/v1/ratings", {"case_no": "C1", "level": "4", "tags": "staff_passive"}),
    ("POST", "/api/v1/ratings", {"case_no": "C1", "level": 4.5, "tags": ["x"] * 30}),
    ("POST", "/api/v1/ratings", {"case_no": "C1", "level": 0, "channel": "fax", "tags": [1]}),
    ("POST", "/api/v1/ratings", {"case_no": "C1", "level": 9}),
    ("POST", "/api/v1/dead-letters/retry", {"all": "yes", "outbox_ids": ["a", 0]}),
    ("POST", "/api/v1/dead-letters/retry", {}),
    ("POST", "/api/v1/dead-letters/retry", {"all": True, "outbox_ids": [1]}),
    ("POST", "/api/v1/tickets/T1/extensions", {"new_due_at": None, "reason": ""}),
    ("POST", "/api/v1/tickets/T1/not-adopt", {"evidence": 5, "note": "x" * 2001}),
    ("POST", "/api/v1/bridge/tickets/T1/updates", {"event_id": "e1", "action": "reopen"}),
    ("PUT", "/api/v1/agency-contacts", {"agency": "局", "phone": []}),
    ("POST", "/api/v1/calls/callback", {"case_no": "C1", "agent_extension": "x1"}),
]
QUERIES = [
    "/api/v1/tickets?limit=abc&overdue=maybe&status=lost",
    "/api/v1/tickets?limit=0",
    "/api/v1/alerts?limit=100000000000000000000000000000",
    "/api/v1/calls?limit=501",
    "/api/v1/evaluations?limit=1.5",
    "/api/v1/stats?from=x&group_by=week",
    "/api/v1/dead-letters?limit=-1",
]
# What the bad inputs above must produce between them: the test proves it reaches each.
EXPECTED_TYPES = {
    "missing", "extra_forbidden", "string_type", "string_too_short", "string_too_long",
    "string_pattern_mismatch", "literal_error", "timezone_aware", "time_not_text",
    "datetime_from_date_parsing", "datetime_type", "int_type",
    "greater_than_equal", "less_than_equal", "list_type", "too_long", "bool_type",
    "retry_nothing_named", "retry_all_alone", "int_parsing",
    "bool_parsing", "json_invalid",
}  # fmt: skip


def check_chinese(error: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The error's message and every detail's: Chinese, no English sentence; details typed."""
    assert CJK.search(error["message"]) and not ENGLISH_SENTENCE.search(error["message"]), where
    details: list[dict[str, Any]] = error.get("details") or []
    for detail in details:
        assert set(detail) == {"type", "loc", "field", "message"}, (where, detail)
        assert detail["type"] in INPUT_PROBLEMS, (where, detail)  # never the fallback
        message = detail["message"]
        assert INPUT_PROBLEM_FALLBACK not in message, (where, detail)
        assert CJK.search(message), (where, detail)
        assert not ENGLISH_SENTENCE.search(message.replace("all: true", "")), (where, detail)
        assert detail["field"] == ".".join(str(p) for p in detail["loc"]), (where, detail)
        if detail["field"]:
            assert message.startswith(f"{detail['field']}："), (where, detail)
    return details


async def test_every_validation_error_reads_in_chinese(
    client: TestClient, services: Services
) -> None:
    token = await services.tokens.create("admin", "管理员", services.clock())
    headers = {"Authorization": f"Bearer {token}"}
    seen: dict[str, set[str]] = {}
    for method, path, body in BODIES:
        answer = await client.request(method, path, json=body, headers=headers)
        assert answer.status == 422, (path, body, await answer.text())
        assert "\\u" not in await answer.text()
        details = check_chinese((await answer.json())["error"], f"{path} {body}")
        assert details, (path, body)
        for d in details:
            seen.setdefault(d["type"], set()).add(d["message"])
    for url in QUERIES:
        answer = await client.get(url, headers=headers)
        assert answer.status == 422, (url, await answer.text())
        details = check_chinese((await answer.json())["error"], url)
        assert details, url
        for d in details:
            seen.setdefault(d["type"], set()).add(d["message"])
    broken = await client.post(
        "/api/v1/services",
        data=b'{"case_no": ',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status == 400
    error = (await broken.json())["error"]
    assert error["code"] == "invalid_json" and "第 1 行第 13 列" in error["message"], error
    for d in check_chinese(error, "broken JSON"):
        seen.setdefault(d["type"], set()).add(d["message"])

    missing = EXPECTED_TYPES - seen.keys()
    assert not missing, f"bad inputs no longer produce {sorted(missing)}"
    # A few rendered with their parameters, as people read them.
    assert "case_no：必须填写。" in seen["missing"]
    assert {"agency：最多 128 个字符。", "note：最多 2000 个字符。"} <= seen["string_too_long"]
    assert seen["literal_error"] == {
        "kind：应为以下之一：consultation、complaint。",
        "channel：应为以下之一：ivr、sms、web、api。",
        "status：应为以下之一：new、dispatched、confirmed、not_adopted、rectifying、rectified、closed。",
        "action：应为以下之一：dispatch、confirm、not_adopt、start_rectify、rectify、close。",
        "group_by：应为以下之一：agency、agent、channel、day。",
    }
    assert seen["too_long"] == {"tags：最多 20 项，收到 30 项。"}
    assert seen["json_invalid"] == {"不是有效的 JSON。"}


def test_the_catalogue_renders_every_parameter() -> None:
    """Each template renders from the ctx pydantic gives it; a missing ctx falls back, never
    a KeyError."""
    from rating.words import input_problem, template_fields

    for kind, template in INPUT_PROBLEMS.items():
        ctx = {name: 7 for name in template_fields(template)}
        shown = input_problem(kind, ctx)
        assert CJK.search(shown) and "{" not in shown, (kind, shown)
    assert input_problem("string_too_long") == INPUT_PROBLEM_FALLBACK
    assert input_problem("never_heard_of") == INPUT_PROBLEM_FALLBACK
    assert (
        input_problem("literal_error", {"expected": "'a', 'b' or 'c'"}) == "应为以下之一：a、b、c。"
    )
