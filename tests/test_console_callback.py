"""What the console tells an agent after 一键回拨, for each thing the call desk can answer.

Faults tried: AMI down (503), a call of the case still in flight (409), a refused Originate
(failed with Asterisk's reason), an ack that did not come in time (unknown), and an error the
console does not translate (passed on as it is).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from console.callback_text import callback_notice
from ivr.outbound import AmiDown
from rating.errors import Conflict, InvalidInput


async def answer(value: object) -> object:
    return value


async def refuse(exc: Exception) -> object:
    raise exc


@pytest.mark.parametrize(
    ("status", "reason", "notice"),
    [
        ("originated", None, "正在呼叫：请接听您的分机"),
        ("unknown", "Asterisk has not acknowledged…", "不要重复拨打"),
        ("failed", "Asterisk refused: Extension does not exist.", "呼叫失败：Asterisk refused"),
        ("failed", None, "呼叫失败：原因不明"),
    ],
)
async def test_each_status_has_its_notice(status: str, reason: str | None, notice: str) -> None:
    placed = SimpleNamespace(status=status, reason=reason)
    assert notice in await callback_notice(answer(placed))


async def test_refusals_agents_meet_are_said_in_chinese() -> None:
    with pytest.raises(AmiDown, match="无法连接 Asterisk") as down:
        await callback_notice(refuse(AmiDown("Asterisk is not reachable")))
    assert (down.value.status, down.value.code) == (503, "ami_unavailable")
    busy = Conflict("case C1 has a callback call still unknown", code="call_in_progress")
    with pytest.raises(Conflict, match="为免重复打扰市民") as conflict:
        await callback_notice(refuse(busy))
    assert conflict.value.code == "call_in_progress"
    other = InvalidInput("agent_extension must be 2 to 8 digits", code="invalid_extension")
    with pytest.raises(InvalidInput, match="2 到 8 位数字"):
        await callback_notice(refuse(other))
