"""Schemathesis hooks of tests/api_fuzz.py (SCHEMATHESIS_HOOKS=tests.fuzz_hooks).

A valid Idempotency-Key gets a fresh value on every request: the generator repeats values
("000…") across different bodies, which the server rightly refuses (422
idempotency_key_reused); that rule is tested in tests/test_idempotency_keys.py. Invalid keys
(too long, holding a NUL) are left as generated, so their refusal is still checked.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

HEADER = "Idempotency-Key"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get(HEADER)
    if isinstance(key, str) and 1 <= len(key) <= 100 and "\x00" not in key:
        headers[HEADER] = uuid.uuid4().hex
