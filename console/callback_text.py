"""What an agent reads after clicking 一键回拨: the call's status, in Chinese (ivr/outbound.py's
statuses). Its refusals (ami_unavailable, call_in_progress) read from rating/words.py."""

from __future__ import annotations

from collections.abc import Awaitable

NOTICES = {
    "originated": "正在呼叫：请接听您的分机",
    "unknown": "Asterisk 尚未确认呼叫，稍后仍可能接通：请留意您的分机，不要重复拨打",
}


async def callback_notice(placing: Awaitable[object]) -> str:
    """The notice for a placed call; a refusal passes through with its Chinese message."""
    placed = await placing
    status = str(getattr(placed, "status", "originated"))
    if status == "failed":
        return f"呼叫失败：{getattr(placed, 'reason', None) or '原因不明'}"
    return NOTICES.get(status, NOTICES["originated"])
