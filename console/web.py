"""The console's plumbing: who is signed in, CSRF, and HTML pages with a nonce-based CSP.

Every handler is wrapped by `guarded`: a `Refusal` carries the page to answer with (sign in
first, 403, 404), and a domain error becomes an HTML page rather than the API's JSON.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from console.session import SESSION_COOKIE, Session, Signer
from rating.access.tokens import TokenRepository
from rating.dead_letters.desk import DeadLetterDesk
from rating.errors import DomainError, NotFound
from rating.policy.profile import Profile
from rating.stats.service import StatsService
from rating.text import check_texts
from rating.tickets.alerts import Alerts
from rating.tickets.service import TicketService, TicketView
from rating.words import (
    ALERT_PHASES,
    CHANNELS,
    DEADLINES,
    EXTENSION_STATUSES,
    OUTBOX_TOPICS,
    ROLES,
    SMS_STATUSES,
    TICKET_EVENTS,
    TICKET_STATUSES,
    actor_name,
)

log = structlog.get_logger("pingjia.console")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# case_no, the agent's extension, actor: places a recorded call back through Asterisk.
CallBack = Callable[[str, str, str], Awaitable[object]]
ROLE_LABELS = ROLES
BOARD_ROLES = frozenset({"bureau", "admin"})


@dataclass(frozen=True)
class Who:
    """The signed-in token's name, role and (for agency tokens) agency."""

    name: str
    role: str
    agency: str | None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"  # as the API writes it into the history


@dataclass
class ConsoleDeps:
    """What the composition root hands the console: domain services, never another part."""

    tickets: TicketService
    stats: StatsService
    alerts: Alerts
    dead_letters: DeadLetterDesk
    sessions: async_sessionmaker[AsyncSession]
    profile: Profile
    clock: Callable[[], datetime]
    secret: bytes
    public_url: str
    callback: CallBack | None  # None: no Asterisk configured (PINGJIA_AMI_URL)
    # A voice_ref to its file in the shared recordings folder, or NotFound saying why not.
    locate_voice: Callable[[str], Path] | None = None


@dataclass
class Visit:
    """One request's session and, when signed in, who it is."""

    session: Session
    who: Who | None
    fresh: bool  # a new session: its cookie must be set on the answer


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


class Refusal(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _environment() -> jinja2.Environment:
    folder = resources.files("console") / "templates"
    templates = {p.name: p.read_text("utf-8") for p in folder.iterdir() if p.name.endswith(".html")}
    return jinja2.Environment(loader=jinja2.DictLoader(templates), autoescape=True)


class ConsoleBase:
    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps
        self.signer = Signer(deps.secret)
        parts = urlsplit(deps.public_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.secure = parts.scheme == "https"
        self.env = _environment()
        self.env.filters["local"] = self.local
        # Stable identifiers in the data, shown by their Chinese names (rating/words.py).
        for name, table in (
            ("status", TICKET_STATUSES),
            ("event", TICKET_EVENTS),
            ("deadline", DEADLINES),
            ("extension_status", EXTENSION_STATUSES),
            ("channel", CHANNELS),
            ("phase", ALERT_PHASES),
            ("sms_status", SMS_STATUSES),
            ("topic", OUTBOX_TOPICS),
        ):
            self.env.filters[name] = lambda value, table=table: table.get(value, value)
        self.env.filters["actor"] = actor_name

    def local(self, when: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return when.astimezone(self.deps.profile.tz).strftime(fmt) if when else "—"

    def guarded(self, handler: Handler) -> Handler:
        @wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                check_texts(request.match_info.items())  # no NUL reaches a query or a page
                check_texts(request.query.items())
                return await handler(request)
            except Refusal as refusal:
                return refusal.response
            except DomainError as exc:
                visit = await self.visit(request)
                return self.page(
                    visit, "message.html", exc.status, title="操作未成功", text=exc.message
                )

        return run

    # --- who is there ---------------------------------------------------------------------------

    async def visit(self, request: web.Request) -> Visit:
        now = self.deps.clock()
        session = self.signer.load(request.cookies.get(SESSION_COOKIE), now)
        if session is None:
            return Visit(self.signer.new(now), None, True)
        who = await self.lookup(session.token_hash) if session.token_hash else None
        return Visit(session, who, False)

    async def lookup(self, token_hash: str) -> Who | None:
        """The token behind a hash, if it still exists and is not revoked."""
        async with self.deps.sessions() as session:
            found = await TokenRepository(session).token_by_hash(token_hash)
        return Who(found.name, found.role, found.agency) if found else None

    async def signed_in(self, request: web.Request, roles: frozenset[str] | None = None) -> Visit:
        """The visit of a signed-in user with one of `roles`; otherwise a refusal page."""
        visit = await self.visit(request)
        if visit.who is None:
            raise Refusal(see_other("/console/signin"))
        if roles is not None and visit.who.role not in roles:
            raise Refusal(
                self.page(
                    visit,
                    "message.html",
                    403,
                    title="无权访问",
                    text=f"{ROLE_LABELS[visit.who.role]}账号不能打开此页面。",
                )
            )
        if visit.who.role == "agency" and not visit.who.agency:
            raise Refusal(
                self.page(
                    visit,
                    "message.html",
                    403,
                    title="无权访问",
                    text="此承办单位令牌没有指定单位，请用 --agency 重新创建。",
                )
            )
        return visit

    async def checked_form(self, request: web.Request, visit: Visit) -> dict[str, str]:
        """The posted form, once its CSRF token and Origin prove it came from our own page."""
        form = await request.post()
        origin = request.headers.get("Origin")
        if (
            visit.fresh
            or not self.signer.csrf_ok(visit.session, form.get("csrf"))
            or (origin is not None and origin != self.origin)
        ):
            log.warning("console form refused: CSRF check failed", origin=origin)
            raise Refusal(
                self.page(
                    visit, "message.html", 403, title="页面已失效", text="请刷新页面后重新提交。"
                )
            )
        fields = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
        check_texts(fields.items())
        return fields

    async def visible(self, visit: Visit, ticket_no: str) -> TicketView:
        """The ticket, as the API shows it: an agency sees only its own (another's is 404)."""
        view = await self.deps.tickets.get(ticket_no)
        assert visit.who is not None
        if visit.who.role == "agency" and view.ticket.agency != visit.who.agency:
            raise NotFound(
                f"no ticket {ticket_no!r}", code="ticket_not_found", params={"ticket_no": ticket_no}
            )
        return view

    # --- rendering ------------------------------------------------------------------------------

    def page(self, visit: Visit, name: str, status: int = 200, **context: Any) -> web.Response:
        nonce = secrets.token_urlsafe(12)
        html = self.env.get_template(name).render(
            nonce=nonce,
            city=self.deps.profile.city,
            who=visit.who,
            role_label=ROLE_LABELS.get(visit.who.role, "") if visit.who else "",
            board=visit.who is not None and visit.who.role in BOARD_ROLES,
            csrf=self.signer.csrf(visit.session),
            nav={"ticket.html": "queue"}.get(name, name.removesuffix(".html")),
            **context,
        )
        response = web.Response(text=html, status=status, content_type="text/html")
        self.secure_headers(response, nonce)
        if visit.fresh:
            self.set_cookie(response, visit.session)
        return response

    def secure_headers(self, response: web.StreamResponse, nonce: str = "") -> None:
        script = f"'nonce-{nonce}'" if nonce else "'none'"
        response.headers.update(
            {
                "Content-Security-Policy": (
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                    "media-src 'self'; "
                    f"script-src {script}; form-action 'self'; frame-ancestors 'none'"
                ),
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            }
        )

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.signer.dump(session),
            httponly=True,
            samesite="Strict",
            path="/console",
            secure=self.secure,
            max_age=int((session.expires - self.deps.clock()).total_seconds()),
        )
