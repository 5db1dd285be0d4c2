"""死信队列 (dead letters), for the bureau: what the bridge gave up on, and 重新发送.

The same `DeadLetterDesk` as `pingjia outbox dead|retry` and `/api/v1/dead-letters`: a row's
button re-arms that one item, 全部重新发送 re-arms every one; the page then says, in Chinese,
what was re-armed and what was refused and why.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from console.web import BOARD_ROLES, ConsoleBase, see_other
from rating.dead_letters.desk import OUTBOX, TICKET, Rearmed, Refused
from rating.errors import InvalidInput
from rating.words import DEAD_LETTER_REFUSALS as REASONS

PAGE_LIMIT = 200
KIND_LABELS = {OUTBOX: "推送中心库", TICKET: "转办12345"}


def _name(kind: str, ref: str) -> str:
    return f"{KIND_LABELS.get(kind, kind)} {ref}"


def refusal_text(refused: Refused) -> str:
    return f"{_name(refused.kind, refused.ref)}（{REASONS.get(refused.reason, refused.reason)}）"


def outcome_texts(done: Rearmed, everything: bool) -> tuple[str, str]:
    """(notice, error) for the page after a retry: what was re-armed, what was refused."""
    names = [_name(OUTBOX, r.ref) for r in done.outbox] + [
        _name(TICKET, r.ref) for r in done.tickets
    ]
    if done.count:
        notice = f"已重新发送 {done.count} 项：{'、'.join(names)}。后台任务将在下一轮发送。"
    elif everything:
        notice = "没有死信，无需重新发送。"
    else:
        notice = ""
    error = (
        f"未重新发送：{'、'.join(refusal_text(r) for r in done.refused)}" if done.refused else ""
    )
    return notice, error


class DeadLetterPage(ConsoleBase):
    def install_dead_letters(self, app: web.Application) -> None:
        app.router.add_get("/console/dead-letters", self.guarded(self.dead_letters))
        app.router.add_post("/console/dead-letters/retry", self.guarded(self.retry_dead))

    async def dead_letters(self, request: web.Request) -> web.Response:
        visit = await self.signed_in(request, BOARD_ROLES)
        found = await self.deps.dead_letters.dead(PAGE_LIMIT)
        return self.page(
            visit,
            "dead_letters.html",
            title="死信队列",
            found=found,
            kinds=KIND_LABELS,
            notice=request.query.get("notice"),
            error=request.query.get("error"),
        )

    async def retry_dead(self, request: web.Request) -> web.Response:
        """One row (outbox_id or ticket_no) or all=1; then back to the list with the outcome."""
        visit = await self.signed_in(request, BOARD_ROLES)
        assert visit.who is not None
        form = await self.checked_form(request, visit)
        everything = form.get("all") == "1"
        raw_id, ticket_no = form.get("outbox_id", ""), form.get("ticket_no", "")
        if not everything and not (raw_id or ticket_no):
            raise InvalidInput("请选择要重新发送的项目。", code="nothing_named")
        if raw_id and not raw_id.isdigit():
            raise InvalidInput(
                f"编号应为数字：{raw_id}", code="invalid_id", params={"value": raw_id}
            )
        done = await self.deps.dead_letters.rearm(
            ids=[int(raw_id)] if raw_id and not everything else [],
            ticket_nos=[ticket_no] if ticket_no and not everything else [],
            everything=everything,
            actor=visit.who.actor,
            now=self.deps.clock(),
        )
        notice, error = outcome_texts(done, everything)
        query = {k: v for k, v in (("notice", notice), ("error", error)) if v}
        return see_other(f"/console/dead-letters?{urlencode(query)}")
