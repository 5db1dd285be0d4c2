"""公开评价结果: the bureau picks which agencies' months are published (/console/results);
anyone reads them, without signing in, at /results (a mobile page) and /results.json (its twin
for the city's portal). Sanmenxia Art. 16, Taishan Art. 23.

Only counts and rates per agency and month reach these pages: no number, no name of a person,
no reason text. The figures are cached for a few minutes (PublicResults) and the answers say so
(Cache-Control), since a portal may poll them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import date, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from console.web import BOARD_ROLES, ConsoleBase, see_other
from rating.errors import DomainError, NotFound
from rating.stats.publication import CACHE_SECONDS, MonthResults, PublicResults, parse_month


class NotPublished(NotFound):
    code = "month_not_published"


RECENT_MONTHS = 12  # the console offers the last year's months
PUBLIC_CACHE = f"public, max-age={CACHE_SECONDS}"


def month_label(month: str) -> str:
    first = parse_month(month)
    return f"{first.year}年{first.month}月"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def recent_months(today: date, count: int = RECENT_MONTHS) -> list[str]:
    months, first = [], today.replace(day=1)
    for _ in range(count):
        months.append(first.strftime("%Y-%m"))
        first = (first - timedelta(days=1)).replace(day=1)
    return months


class ResultsPages(ConsoleBase):
    @cached_property
    def results(self) -> PublicResults:
        deps = self.deps
        return PublicResults(deps.sessions, deps.profile, deps.stats)

    def install_results(self, app: web.Application) -> None:
        self.env.filters.update(month_label=month_label, percent=percent, score=score)
        app.router.add_get("/console/results", self.guarded(self.choose))
        app.router.add_post("/console/results", self.guarded(self.publish))
        app.router.add_get("/results", self.public_page)
        app.router.add_get("/results.json", self.public_json)

    # --- the bureau's choice ----------------------------------------------------------------------

    async def choose(self, request: web.Request) -> web.Response:
        visit = await self.signed_in(request, BOARD_ROLES)
        today = self.deps.clock().astimezone(self.deps.profile.tz).date()
        months = recent_months(today)
        month = request.query.get("month") or months[1]  # last month: a whole one
        parse_month(month)
        published = await self.results.published()
        chosen = {p.agency for p in published if p.month == month}
        agencies = sorted(set(await self.results.candidates(month)) | chosen)
        summary: dict[str, list[str]] = {}
        for row in published:
            summary.setdefault(row.month, []).append(row.agency)
        return self.page(
            visit,
            "results.html",
            title="公开评价结果",
            months=months if month in months else [month, *months],
            month=month,
            agencies=agencies,
            chosen=chosen,
            summary=summary,
            notice=request.query.get("notice"),
        )

    async def publish(self, request: web.Request) -> web.Response:
        visit = await self.signed_in(request, BOARD_ROLES)
        assert visit.who is not None
        form = await self.checked_form(request, visit)
        month = form.get("month", "")
        agencies = [a for a in (await request.post()).getall("agency", []) if isinstance(a, str)]
        done = await self.results.publish(month, agencies, visit.who.actor, self.deps.clock())
        notice = (
            f"{month_label(month)}已公布 {len(done)} 个单位：{'、'.join(done)}。"
            if done
            else f"{month_label(month)}的结果已全部撤回，不再公开。"
        )
        return see_other(f"/console/results?{urlencode({'month': month, 'notice': notice})}")

    # --- the public -----------------------------------------------------------------------------

    async def _wanted(self, request: web.Request) -> tuple[list[MonthResults], MonthResults | None]:
        """Every published month, and the one asked for (?month=, default the newest)."""
        months = await self.results.results(self.deps.clock())
        raw = request.query.get("month")
        if raw is None:
            return months, months[0] if months else None
        parse_month(raw)
        found = next((m for m in months if m.month == raw), None)
        if found is None:
            raise NotPublished(
                f"{month_label(raw)}的评价结果尚未公布。", params={"month": month_label(raw)}
            )
        return months, found

    async def public_page(self, request: web.Request) -> web.Response:
        try:
            months, shown = await self._wanted(request)
        except DomainError as exc:
            return self._public_html("results_public.html", exc.status, error=exc.message)
        return self._public_html(
            "results_public.html",
            200,
            months=[m.month for m in months],
            shown=shown,
        )

    async def public_json(self, request: web.Request) -> web.Response:
        try:
            months, shown = await self._wanted(request)
        except DomainError as exc:
            body = {"error": {"code": exc.code, "message": exc.message}}
            return self._public_json(body, exc.status)
        wanted = months if "month" not in request.query else [shown] if shown else []
        return self._public_json(
            {
                "city": self.deps.profile.city,
                "profile": self.deps.profile.name,
                "months": [asdict(m) for m in wanted],
            },
            200,
        )

    def _public_html(self, name: str, status: int, **context: Any) -> web.Response:
        nonce = secrets.token_urlsafe(12)
        html = self.env.get_template(name).render(
            nonce=nonce, city=self.deps.profile.city, **context
        )
        response = web.Response(text=html, status=status, content_type="text/html")
        self.secure_headers(response, nonce)
        if status == 200:
            response.headers["Cache-Control"] = PUBLIC_CACHE
        return response

    def _public_json(self, body: dict[str, Any], status: int) -> web.Response:
        response = web.Response(
            text=json.dumps(body, ensure_ascii=False),
            status=status,
            content_type="application/json",
        )
        response.headers["Cache-Control"] = PUBLIC_CACHE if status == 200 else "no-store"
        response.headers["Access-Control-Allow-Origin"] = "*"  # the portal reads it from its page
        return response
