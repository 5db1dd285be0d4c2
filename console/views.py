"""The console's pages: sign-in, 工单队列 (queue) and 工单详情 (one ticket and its steps).

Every step calls the same domain services as the API (rating/tickets/service.py); which steps a page
offers comes from the same table (rating/tickets/rules.py), so the buttons and the rules agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from console.callback_text import callback_notice
from console.dead_letters import DeadLetterPage
from console.reports import Reports
from console.results import ResultsPages
from console.session import SESSION_COOKIE, token_hash
from console.voice import VoicePlayer
from console.web import Visit, see_other
from rating.errors import DomainError, InvalidInput, NotFound
from rating.tickets.repository import TicketFilter
from rating.tickets.rules import (
    EXTENSION_DECIDERS,
    EXTENSION_REQUESTERS,
    OPEN_STATUSES,
    STATUS_LABELS,
    STATUSES,
    TRANSITIONS,
    available_actions,
    overdue_days,
    stage_deadline,
)
from rating.tickets.service import Step, TicketView

CALLERS = frozenset({"agent", "admin"})
STEP_FIELDS = {"dispatch": "agency", "not_adopt": "evidence", "rectify": "feedback"}
# The forms' fields by their labels: what a refused form kept, where no form shows it again.
FIELD_LABELS = {
    "agency": "承办单位",
    "evidence": "证据",
    "feedback": "整改反馈",
    "note": "备注",
    "new_due_at": "新期限",
    "reason": "理由",
    "extension": "分机",
}


@dataclass(frozen=True)
class Row:
    """One queue line: the ticket and where it stands against its deadline in force."""

    view: TicketView
    due: datetime | None
    overdue: int
    left: str


class Console(Reports, DeadLetterPage, VoicePlayer, ResultsPages):
    def install(self, app: web.Application) -> None:
        get, post = app.router.add_get, app.router.add_post
        get("/console", self.guarded(self.home))
        get("/console/", self.slash)
        get("/console/signin", self.guarded(self.signin_form))
        post("/console/signin", self.guarded(self.signin))
        post("/console/signout", self.guarded(self.signout))
        get("/console/tickets", self.guarded(self.queue))
        get("/console/tickets/{no}", self.guarded(self.ticket))
        post("/console/tickets/{no}/act/{action}", self.guarded(self.act))
        post("/console/tickets/{no}/extensions", self.guarded(self.extension))
        post(
            "/console/tickets/{no}/extensions/{id:[0-9]+}/{verb:grant|refuse}",
            self.guarded(self.decide),
        )
        post("/console/tickets/{no}/callback", self.guarded(self.call_back))
        # A step's address opened by itself (a reload, a bookmark after a refusal) is the
        # ticket's page, never a dead end.
        for step in (
            "/act/{action}",
            "/extensions",
            "/extensions/{id:[0-9]+}/{verb:grant|refuse}",
            "/callback",
        ):
            get("/console/tickets/{no}" + step, self.guarded(self.to_ticket))
        self.install_reports(app)
        self.install_dead_letters(app)
        self.install_voice(app)
        self.install_results(app)

    # --- signing in -----------------------------------------------------------------------------

    async def slash(self, request: web.Request) -> web.Response:
        """`/console/` is the address people type: moved for good to `/console`."""
        raise web.HTTPMovedPermanently("/console")

    async def to_ticket(self, request: web.Request) -> web.Response:
        return see_other(f"/console/tickets/{quote(request.match_info['no'])}")

    async def home(self, request: web.Request) -> web.Response:
        visit = await self.visit(request)
        return see_other("/console/tickets" if visit.who else "/console/signin")

    async def signin_form(self, request: web.Request) -> web.Response:
        return self.page(await self.visit(request), "signin.html", title="登录")

    async def signin(self, request: web.Request) -> web.Response:
        visit = await self.visit(request)
        form = await self.checked_form(request, visit)
        token = form.get("token", "")
        who = await self.lookup(token_hash(token)) if token else None
        if who is None:
            return self.page(visit, "signin.html", 401, title="登录", error="令牌无效或已吊销。")
        response = see_other("/console/tickets")
        self.set_cookie(response, self.signer.new(self.deps.clock(), token_hash(token)))
        return response

    async def signout(self, request: web.Request) -> web.Response:
        visit = await self.visit(request)
        await self.checked_form(request, visit)
        response = see_other("/console/signin")
        response.del_cookie(SESSION_COOKIE, path="/console")
        return response

    # --- the queue ------------------------------------------------------------------------------

    def row(self, view: TicketView, now: datetime) -> Row:
        stage = stage_deadline(self.deps.profile, view.ticket.status)
        due = view.in_force().get(stage) if stage else None
        late = overdue_days(due, now)
        if due is None:
            left = "—"
        elif late:
            left = f"逾期{late}天"
        else:
            hours = (due - now).total_seconds() / 3600
            left = f"剩余{hours:.0f}小时" if hours < 48 else f"剩余{hours / 24:.0f}天"
        return Row(view, due, late, left)

    async def queue(self, request: web.Request) -> web.Response:
        visit = await self.signed_in(request)
        assert visit.who is not None
        q = request.query
        status = q.get("status") if q.get("status") in STATUSES else None
        own = visit.who.agency if visit.who.role == "agency" else None
        agency = own or (q.get("agency", "").strip() or None)
        overdue = True if q.get("overdue") == "1" else None
        now = self.deps.clock()
        views = await self.deps.tickets.list(
            TicketFilter(status=status, agency=agency, overdue=overdue, limit=300), now
        )
        rows = [self.row(v, now) for v in views]
        # Overdue first, then by the deadline in force; tickets without one last.
        rows.sort(key=lambda r: (r.due is None, r.due or now))
        return self.page(
            visit,
            "queue.html",
            title="工单队列",
            rows=rows,
            statuses=STATUS_LABELS,
            chosen=status or "",
            agency=agency or "",
            overdue=overdue,
            own=own,
            label=self.deps.profile.label,
        )

    # --- one ticket -----------------------------------------------------------------------------

    async def ticket(self, request: web.Request) -> web.Response:
        visit = await self.signed_in(request)
        view = await self.visible(visit, request.match_info["no"])
        done = request.query.get("done", "")
        return self.ticket_page(
            visit,
            view,
            notice=TRANSITIONS[done].title if done in TRANSITIONS else request.query.get("notice"),
        )

    def ticket_page(
        self, visit: Visit, view: TicketView, status: int = 200, **extra: Any
    ) -> web.Response:
        assert visit.who is not None
        role, t = visit.who.role, view.ticket
        profile = self.deps.profile
        in_force = view.in_force()
        deadlines = [
            (name, datetime.fromisoformat(when), in_force.get(name))
            for name, when in t.deadlines.items()
        ]
        offers = available_actions(profile, t.status, role, list(t.tags))
        can_extend = role in EXTENSION_REQUESTERS and t.status in OPEN_STATUSES
        shown = {o.action for o in offers if o.refusal is None}
        shown |= {"extension"} if can_extend else set()
        shown |= {"callback"} if role in CALLERS and self.deps.callback is not None else set()
        typed = extra.get("form") or {}
        kept = [
            (FIELD_LABELS[k], v)
            for k, v in typed.items()
            if k in FIELD_LABELS and v and extra.get("posted") not in shown
        ]
        return self.page(
            visit,
            "ticket.html",
            status,
            title=f"工单 {t.ticket_no}",
            view=view,
            t=t,
            row=self.row(view, self.deps.clock()),
            status_label=STATUS_LABELS[t.status],
            level_label=profile.label(t.level),
            deadlines=deadlines,
            current=stage_deadline(profile, t.status),
            offers=offers,
            transitions=TRANSITIONS,
            fields=STEP_FIELDS,
            statuses=STATUS_LABELS,
            tag_texts=[tag.text for c in t.tags if (tag := profile.tag(c)) is not None],
            can_extend=can_extend,
            kept=kept,
            can_decide=role in EXTENSION_DECIDERS,
            can_call=role in CALLERS,
            call_ready=self.deps.callback is not None,
            voice=self.voice_state(t.ticket_no or "", t.voice_ref),
            **extra,
        )

    async def _step(self, request: web.Request, run: Any, posted: str) -> web.Response:
        """Check the form, run one domain step, and show its outcome on the ticket page.

        A refusal shows the page again with the refusal and what was typed, in the form
        `posted` names (an action, `extension`, `callback`)."""
        visit = await self.signed_in(request)
        assert visit.who is not None
        ticket_no = request.match_info["no"]
        form = await self.checked_form(request, visit)
        await self.visible(visit, ticket_no)
        try:
            notice = await run(form, visit.who)
        except DomainError as exc:
            return self.ticket_page(
                visit,
                await self.deps.tickets.get(ticket_no),
                exc.status,
                error=exc.message,
                form=form,
                posted=posted,
            )
        return see_other(f"/console/tickets/{quote(ticket_no)}?notice={quote(notice)}")

    async def act(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in TRANSITIONS:
            raise NotFound(
                f"no ticket action {action!r}", code="unknown_action", params={"action": action}
            )

        async def run(form: dict[str, str], who: Any) -> str:
            step = Step(
                note=form.get("note") or None,
                agency=form.get("agency") or None,
                evidence=form.get("evidence") or None,
                feedback=form.get("feedback") or None,
            )
            await self.deps.tickets.act(
                request.match_info["no"],
                action,
                step,
                role=who.role,
                actor=who.actor,
                now=self.deps.clock(),
            )
            return f"已完成：{TRANSITIONS[action].title}"

        return await self._step(request, run, action)

    async def extension(self, request: web.Request) -> web.Response:
        async def run(form: dict[str, str], who: Any) -> str:
            try:
                local = datetime.fromisoformat(form.get("new_due_at", ""))
            except ValueError:
                raise InvalidInput("no new deadline given", code="invalid_due_at") from None
            await self.deps.tickets.request_extension(
                request.match_info["no"],
                new_due_at=local.replace(tzinfo=self.deps.profile.tz),
                reason=form.get("reason", ""),
                deadline=None,
                role=who.role,
                actor=who.actor,
                now=self.deps.clock(),
            )
            return "已提交延期申请"

        return await self._step(request, run, "extension")

    async def decide(self, request: web.Request) -> web.Response:
        grant = request.match_info["verb"] == "grant"

        async def run(form: dict[str, str], who: Any) -> str:
            await self.deps.tickets.decide_extension(
                request.match_info["no"],
                int(request.match_info["id"]),
                grant=grant,
                note=form.get("note") or None,
                role=who.role,
                actor=who.actor,
                now=self.deps.clock(),
            )
            return "已批准延期" if grant else "已驳回延期"

        return await self._step(request, run, "decide")

    async def call_back(self, request: web.Request) -> web.Response:
        await self.signed_in(request, CALLERS)

        async def run(form: dict[str, str], who: Any) -> str:
            if self.deps.callback is None:
                raise InvalidInput("PINGJIA_AMI_URL is not set", code="ami_not_configured")
            view = await self.deps.tickets.get(request.match_info["no"])
            extension = form.get("extension", "")
            return await callback_notice(self.deps.callback(view.case_no, extension, who.actor))

        return await self._step(request, run, "callback")
