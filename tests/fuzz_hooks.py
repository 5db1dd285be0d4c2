"""Schemathesis hooks of tests/api_fuzz.py (SCHEMATHESIS_HOOKS=tests.fuzz_hooks): the state a
request meets that the document cannot describe.

A valid Idempotency-Key gets a fresh value on every request: the generator repeats values
("000…") across different bodies, which the server rightly refuses (422
idempotency_key_reused); that rule is tested in tests/test_idempotency_keys.py. Invalid keys
(too long, holding a NUL) are left as generated, so their refusal is still checked.

A case's `completed_at` later than the server's clock is moved into the past: the server
refuses a completion more than 5 minutes ahead of its clock (422 completed_in_future, tested in
tests/test_future_completion.py), a bound that moves with the clock, which no schema states.
Only well-formed times that lie ahead are moved; every other value is sent as generated.

A statistics period whose `to` is not after its `from` is put in order (422 invalid_period
otherwise, tested in tests/test_tickets_stats.py): a rule between two parameters that JSON Schema
cannot state. Times that do not parse are sent as generated.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

HEADER = "Idempotency-Key"
SERVICES = ("POST", "/api/v1/services")
STATS = ("GET", "/api/v1/stats")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get(HEADER)
    if isinstance(key, str) and 1 <= len(key) <= 100 and "\x00" not in key:
        headers[HEADER] = uuid.uuid4().hex
    if (case.method.upper(), case.path) == SERVICES and isinstance(case.body, dict):
        past = in_the_past(case.body.get("completed_at"), datetime.now(UTC))
        if past is not None:
            case.body["completed_at"] = past
    if (case.method.upper(), case.path) == STATS and isinstance(case.query, dict):
        in_order(case.query)


def in_the_past(value: object, now: datetime) -> str | None:
    """`value` moved an hour before `now` when it is an ISO time with an offset that lies
    ahead of `now`; None (leave it as it is) for anything else."""
    when = _aware(value)
    if when is None or when <= now:
        return None
    return (now - timedelta(hours=1)).astimezone(when.tzinfo).isoformat()


def _aware(value: object) -> datetime | None:
    """An ISO time with an offset; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def in_order(query: dict[str, Any]) -> None:
    """`from` before `to` in a statistics query: swapped, or `to` a second later when equal."""
    start, end = _aware(query.get("from")), _aware(query.get("to"))
    if start is None or end is None or start < end:
        return
    if end < start:
        query["from"], query["to"] = query["to"], query["from"]
        return
    try:
        query["to"] = (start + timedelta(seconds=1)).isoformat()
    except OverflowError:
        query["from"] = (start - timedelta(seconds=1)).isoformat()
