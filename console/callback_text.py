"""What an agent reads after clicking 一键回拨: the call's status and refusals, in Chinese
(ivr/outbound.py's statuses and error codes)."""

from __future__ import annotations

from collections.abc import Awaitable

from rating.errors import DomainError

NOTICES = {
    "originated": "正在呼叫：请接听您的分机",
    "unknown": "Asterisk 尚未确认呼叫，稍后仍可能接通：请留意您的分机，不要重复拨打",
}
ERRORS = {
    "ami_unavailable": "无法连接 Asterisk（AMI），未发起呼叫，请稍后再试。",
    "call_in_progress": "该案件的上一通电话尚未结束或结果未明，为免重复打扰市民，请稍后再试。",
}


async def callback_notice(placing: Awaitable[object]) -> str:
    """The notice for a placed call; a refusal agents meet is raised again in Chinese."""
    try:
        placed = await placing
    except DomainError as exc:
        if exc.code in ERRORS:
            raise type(exc)(ERRORS[exc.code], code=exc.code) from None
        raise
    status = str(getattr(placed, "status", "originated"))
    if status == "failed":
        return f"呼叫失败：{getattr(placed, 'reason', None) or '原因不明'}"
    return NOTICES.get(status, NOTICES["originated"])
