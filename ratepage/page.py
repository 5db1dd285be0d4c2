"""The rating-link page GET|POST /r/{token}: a mobile-first Chinese form (jinja2).

Safety: the token is 72 random bits; misses are rate-limited per client address through the
shared state; the form carries a double-submit CSRF value (a SameSite=Strict cookie that a
foreign site can neither read nor send); a foreign Origin is refused; the page is not framed,
not cached, and sends no Referer to other sites (the token is in the URL; "no-referrer"
would make browsers post `Origin: null`, which the Origin check must refuse).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jinja2
import structlog
from aiohttp import web
from multidict import MultiDictProxy

from ratepage.links import Links, LinkState, LinkView
from rating.errors import InvalidInput
from rating.policy.profile import Profile
from rating.policy.rules import MAX_REASON_CHARS
from rating.state import SharedState, StateError
from rating.text import unstorable

log = structlog.get_logger("pingjia.ratepage")
CSRF_COOKIE = "pj_csrf"
REQUESTS_PER_WINDOW = 60  # any request to /r/ from one address
MISSES_PER_WINDOW = 10  # unknown tokens from one address: guessing
WINDOW = 600.0
TITLES = {
    LinkState.UNKNOWN: ("链接无效", "没有找到这个评价链接，请核对短信中的链接。", 404),
    LinkState.EXPIRED: ("链接已过期", "评价期限已过，感谢您的关注。", 410),
    LinkState.DONE: ("您已评价", "这件诉求已经评价过了，感谢您的支持！", 200),
}


def _environment() -> jinja2.Environment:
    folder = resources.files("ratepage") / "templates"
    templates = {p.name: p.read_text("utf-8") for p in folder.iterdir() if p.name.endswith(".html")}
    return jinja2.Environment(loader=jinja2.DictLoader(templates), autoescape=True)


class RatingPage:
    """The two handlers over the links service."""

    def __init__(
        self,
        links: Links,
        profile: Profile,
        state: SharedState,
        public_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.links = links
        self.profile = profile
        self.state = state
        self.clock = clock
        parts = urlsplit(public_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.secure = parts.scheme == "https"
        self.env = _environment()

    def install(self, app: web.Application) -> None:
        app.router.add_get("/r/{token}", self.get)
        app.router.add_post("/r/{token}", self.post)

    # --- handlers ------------------------------------------------------------------------------

    async def get(self, request: web.Request) -> web.Response:
        """Show the form, or a friendly page when the link cannot be used."""
        token = request.match_info["token"]
        view, limited = await self._open(request, token)
        if limited is not None:
            return limited
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(16)
        if view.state in (LinkState.OPEN, LinkState.ADD_REASON):
            return self._form(view, csrf, {})
        return self._message(view.state)

    async def post(self, request: web.Request) -> web.Response:
        """Record the rating (or the missing reason); errors re-show the form with the input."""
        token = request.match_info["token"]
        view, limited = await self._open(request, token)
        if limited is not None:
            return limited
        if view.state not in (LinkState.OPEN, LinkState.ADD_REASON):
            return self._message(view.state)
        form = await request.post()
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get("csrf")
        origin = request.headers.get("Origin")
        if (
            not cookie
            or not isinstance(sent, str)
            or not secrets.compare_digest(cookie, sent)
            or (origin is not None and origin != self.origin)
        ):
            log.warning("rating form refused: CSRF check failed", origin=origin)
            return self._page(
                "message.html", 403, title="页面已失效", text="请重新打开短信中的链接再提交。"
            )
        values, error = self._read(form, view)
        if error is None:
            error = await self._submit(token, view, values)
        if error is not None:
            return self._form(view, cookie, values, error, status=422)
        level = values["level"]
        return self._page(
            "message.html",
            200,
            title="感谢您的评价",
            thanks=True,
            text=f"已记录：{self.profile.label(level)}。感谢您的支持！",
            case_no=view.evaluation.case.case_no if view.evaluation else "",
        )

    # --- steps ---------------------------------------------------------------------------------

    async def _open(self, request: web.Request, token: str) -> tuple[LinkView, web.Response | None]:
        address = request.remote or "unknown"
        if not await self._allowed(f"r:{address}", REQUESTS_PER_WINDOW):
            return LinkView(LinkState.UNKNOWN), self._too_many()
        if unstorable(token) is not None:  # no link holds a NUL: an unknown one, not a 500
            view = LinkView(LinkState.UNKNOWN)
        else:
            view = await self.links.view(token, self.clock())
        if view.state is LinkState.UNKNOWN and not await self._allowed(
            f"r-miss:{address}", MISSES_PER_WINDOW
        ):
            log.warning("rating link guessing slowed down", address=address)
            return view, self._too_many()
        return view, None

    async def _allowed(self, key: str, limit: int) -> bool:
        try:
            return (await self.state.hit(key, limit, WINDOW)).allowed
        except StateError:
            # Shared state down: the 72-bit token still guards; keep serving citizens.
            log.warning("rate limit skipped: shared state unavailable", key=key.split(":")[0])
            return True

    def _read(self, form: MultiDictProxy[Any], view: LinkView) -> tuple[dict[str, Any], str | None]:
        raw_level = form.get("level")
        if view.state is LinkState.ADD_REASON and view.rating is not None:
            raw_level = str(view.rating.level)
        tags = [t for t in form.getall("tag", []) if isinstance(t, str)][:20]
        reason = form.get("reason")
        reason = reason.strip() if isinstance(reason, str) else ""
        tags = [t for t in tags if unstorable(t) is None]  # a tag code is never such text
        values: dict[str, Any] = {"level": 0, "tags": tags, "reason": reason}
        if unstorable(reason) is not None:
            # A NUL or lone surrogate: say so on the page, and keep it out of the form.
            values["reason"] = ""
            return values, "意见中含有无法识别的字符，请删除后重新填写。"
        if not isinstance(raw_level, str) or raw_level not in {"1", "2", "3", "4", "5"}:
            return values, "请先选择满意程度。"
        values["level"] = int(raw_level)
        if len(reason) > MAX_REASON_CHARS:
            return values, f"意见最多{MAX_REASON_CHARS}字，请删减后再提交。"
        return values, None

    async def _submit(self, token: str, view: LinkView, values: dict[str, Any]) -> str | None:
        assert view.evaluation is not None
        level, tags, reason = values["level"], values["tags"], values["reason"] or None
        allowed = {t.code for t in self.profile.tags_for(level)}
        tags = [t for t in tags if t in allowed]  # tags of another level, chosen before a change
        try:
            if view.state is LinkState.ADD_REASON and view.rating is not None:
                await self.links.add_reason(
                    token, view.evaluation, view.rating, tags, reason, self.clock()
                )
            else:
                await self.links.rate(token, view.evaluation, level, tags, reason, self.clock())
        except InvalidInput as exc:
            if exc.code == "reason_required":
                return "请至少选择一个原因，或写下您的意见。"
            return f"提交未成功：{exc.message}"
        return None

    # --- rendering -----------------------------------------------------------------------------

    def _form(
        self,
        view: LinkView,
        csrf: str,
        values: dict[str, Any],
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        assert view.evaluation is not None
        case = view.evaluation.case
        fixed = view.rating.level if view.state is LinkState.ADD_REASON and view.rating else None
        levels = [(n, self.profile.label(n)) for n in (1, 2, 3, 4, 5)]
        response = self._page(
            "form.html",
            status,
            title="服务评价",
            case_no=case.case_no,
            matter=case.matter,
            agency=case.agency,
            completed=case.completed_at.astimezone(self.profile.tz).strftime("%Y年%m月%d日"),
            levels=levels,
            tags={n: self.profile.tags_for(n) for n, _ in levels},
            required=sorted(self.profile.reason_required_levels),
            fixed=fixed,
            chosen=fixed or values.get("level", 0),
            chosen_tags=set(values.get("tags", [])),
            reason=values.get("reason", ""),
            max_reason=MAX_REASON_CHARS,
            error=error,
            csrf=csrf,
        )
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="Strict",
            path="/r/",
            secure=self.secure,
            max_age=86400,
        )
        return response

    def _message(self, state: LinkState) -> web.Response:
        title, text, status = TITLES[state]
        return self._page("message.html", status, title=title, text=text)

    def _too_many(self) -> web.Response:
        response = self._page(
            "message.html", 429, title="请稍后再试", text="访问过于频繁，请过几分钟再打开链接。"
        )
        response.headers["Retry-After"] = str(int(WINDOW))
        return response

    def _page(self, name: str, status: int, **context: Any) -> web.Response:
        nonce = secrets.token_urlsafe(12)
        html = self.env.get_template(name).render(nonce=nonce, city=self.profile.city, **context)
        response = web.Response(text=html, status=status, content_type="text/html")
        response.headers.update(
            {
                "Content-Security-Policy": (
                    "default-src 'none'; style-src 'unsafe-inline'; "
                    f"script-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'"
                ),
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            }
        )
        return response
