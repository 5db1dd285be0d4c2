"""The fuzz run's hooks (tests/fuzz_hooks.py) change only what they say they change: a
well-formed time ahead of the clock, a period out of order. Anything else, garbage included,
is sent as generated, so the server's refusal of it is still checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fuzz_hooks import in_order, in_the_past

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def test_a_time_ahead_moves_an_hour_before_the_clock_in_its_own_offset() -> None:
    assert in_the_past("2306-12-02T18:49:58.019-06:20", NOW) == "2026-12-05T19:40:00-06:20"
    assert in_the_past("2026-12-06T03:00:01Z", NOW) == "2026-12-06T02:00:00+00:00"


@pytest.mark.parametrize(
    "value",
    ["2026-12-06T02:59:59Z", "2026-12-06T03:00:00+00:00", "2099-01-01T00:00:00", "soon", 0, None],
)
def test_past_naive_and_garbage_times_are_left_alone(value: Any) -> None:
    assert in_the_past(value, NOW) is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
            {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
        ),
        (
            {"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
            {"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:01+00:00"},
        ),
        (
            {"from": "9999-12-31T23:59:59+00:00", "to": "9999-12-31T23:59:59+00:00"},
            {"from": "9999-12-31T23:59:58+00:00", "to": "9999-12-31T23:59:59+00:00"},
        ),
        ({"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}, None),
        ({"from": "2026-12-02T00:00:00Z", "to": "yesterday"}, None),
        ({"from": "2026-12-02T00:00:00", "to": "2026-12-01T00:00:00"}, None),
        ({"to": "2026-12-01T00:00:00Z"}, None),
    ],
)
def test_a_period_is_put_in_order_and_nothing_else_is_touched(
    query: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    sent = dict(query)
    in_order(sent)
    assert sent == (expected if expected is not None else query)
