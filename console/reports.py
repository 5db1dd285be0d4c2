"""期限看板 (deadline board), 统计 (statistics with charts) and their CSV export, for the bureau.

Periods are local calendar days of the profile's zone, `to` inclusive, as an operator reads
them; the CSV starts with a UTF-8 byte-order mark so that Excel shows the Chinese right.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from urllib.parse import quote

from aiohttp import web

from console.charts import bar_chart, line_chart, percent
from console.csv_cells import safe_row
from console.web import BOARD_ROLES, ConsoleBase
from rating.errors import InvalidInput
from rating.stats.service import Figures
from rating.tickets.repository import TicketFilter
from rating.tickets.rules import OPEN_STATUSES, STATUS_LABELS, overdue_days, stage_deadline
from rating.words import CHANNELS, STATS_GROUPS, UNFILLED

GROUPS = STATS_GROUPS
HEADERS = {"day": "日期", "agency": "单位", "channel": "渠道", "agent": "话务员"}
DEFAULT_DAYS = 30
MAX_DAYS = 366


def group_key(group: str | None, key: str | None) -> str:
    """A group's name as the page and the CSV both show it: a channel by its Chinese name, a
    blank (a case without an agency, a rating without an agent) as 未填写."""
    if not key:
        return UNFILLED
    return CHANNELS.get(key, key) if group == "channel" else key


class Reports(ConsoleBase):
    def install_reports(self, app: web.Application) -> None:
        app.router.add_get("/console/board", self.guarded(self.board))
        app.router.add_get("/console/stats", self.guarded(self.stats))
        app.router.add_get("/console/stats.csv", self.guarded(self.stats_csv))

    async def board(self, request: web.Request) -> web.Response:
        """Open tickets in three columns by their deadline in force, and the latest alerts."""
        visit = await self.signed_in(request, BOARD_ROLES)
        now = self.deps.clock()
        views = await self.deps.tickets.list(TicketFilter(limit=1000), now)
        columns: dict[str, list[tuple[object, datetime | None, int]]] = {
            "overdue": [],
            "soon": [],
            "later": [],
        }
        for view in views:
            if view.ticket.status not in OPEN_STATUSES:
                continue
            stage = stage_deadline(self.deps.profile, view.ticket.status)
            due = view.in_force().get(stage) if stage else None
            late = overdue_days(due, now)
            key = (
                "overdue"
                if late
                else ("soon" if due is not None and due - now <= timedelta(days=1) else "later")
            )
            columns[key].append((view, due, late))
        alerts = await self.deps.alerts.list(None, None, 30)
        return self.page(
            visit,
            "board.html",
            title="期限看板",
            columns=columns,
            alerts=alerts,
            statuses=STATUS_LABELS,
            label=self.deps.profile.label,
        )

    def period(self, request: web.Request) -> tuple[date, date, str | None]:
        """`from`, `to` (local dates, inclusive) and `group_by` from the query string."""
        q = request.query
        today = self.deps.clock().astimezone(self.deps.profile.tz).date()
        try:
            end = date.fromisoformat(q["to"]) if q.get("to") else today
            start = (
                date.fromisoformat(q["from"])
                if q.get("from")
                else end - timedelta(days=DEFAULT_DAYS - 1)
            )
        except ValueError:
            raise InvalidInput("日期格式应为 YYYY-MM-DD。", code="invalid_date") from None
        if end < start:
            raise InvalidInput("结束日期不能早于开始日期。", code="invalid_period")
        if (end - start).days >= MAX_DAYS:
            raise InvalidInput(
                f"一次最多统计{MAX_DAYS}天。", code="period_too_long", params={"days": MAX_DAYS}
            )
        group = q.get("group_by") or None
        if group is not None and group not in GROUPS:
            raise InvalidInput(
                f"分组方式应为 {', '.join(GROUPS)} 之一。",
                code="invalid_group",
                params={"groups": list(GROUPS)},
            )
        return start, end, group

    async def figures(
        self, start: date, end: date, group: str | None
    ) -> tuple[Figures, list[Figures]]:
        first, _ = self.deps.stats.local_day(start)
        _, last = self.deps.stats.local_day(end)
        return await self.deps.stats.figures(first, last, group)

    async def stats(self, request: web.Request) -> web.Response:
        visit = await self.signed_in(request, BOARD_ROLES)
        start, end, group = self.period(request)
        group = group or "agency"
        total, groups = await self.figures(start, end, group)
        _, days = await self.figures(start, end, "day")
        label = self.deps.profile.label
        by_day = {f.key: f for f in days}
        span = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        charts = {
            "levels": bar_chart("各等级评价数", [(label(lv), n) for lv, n in total.levels.items()]),
            "groups": bar_chart(
                f"满意率（{GROUPS[group]}）",
                [(group_key(group, g.key), g.satisfaction_rate or 0.0) for g in groups],
                percent,
                top=1.0,
            ),
            "days": line_chart(
                "每日满意率",
                [
                    (
                        d.strftime("%m-%d"),
                        by_day[d.isoformat()].satisfaction_rate
                        if d.isoformat() in by_day
                        else None,
                    )
                    for d in span
                ],
                percent,
                top=1.0,
            ),
        }
        query = f"from={start.isoformat()}&to={end.isoformat()}&group_by={quote(group)}"
        return self.page(
            visit,
            "stats.html",
            title="统计",
            total=total,
            groups=groups,
            charts=charts,
            start=start,
            end=end,
            group=group,
            group_names=GROUPS,
            group_key=lambda key: group_key(group, key),
            levels=[(lv, label(lv)) for lv in range(1, 6)],
            csv_query=query,
        )

    async def stats_csv(self, request: web.Request) -> web.StreamResponse:
        await self.signed_in(request, BOARD_ROLES)
        start, end, group = self.period(request)
        total, groups = await self.figures(start, end, group)
        label = self.deps.profile.label
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [HEADERS.get(group or "", "范围"), "评价数"]
            + [label(lv) for lv in range(1, 6)]
            + ["满意率", "平均分", "差评工单", "按时核实", "已整改", "不予采纳"]
        )
        for fig in [*groups, total]:
            # Agency and agent names come from the case system: neutralise formulas.
            key = "合计" if fig is total else group_key(group, fig.key)
            writer.writerow(safe_row(self.csv_row(fig, key)))
        name = f"pingjia-stats-{start.isoformat()}-{end.isoformat()}.csv"
        response = web.Response(
            body=("\ufeff" + out.getvalue()).encode("utf-8"),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
        self.secure_headers(response)
        return response

    @staticmethod
    def csv_row(fig: Figures, key: str) -> list[object]:
        rate = "" if fig.satisfaction_rate is None else f"{fig.satisfaction_rate * 100:.2f}%"
        return [
            key,
            fig.count,
            *(fig.levels[lv] for lv in range(1, 6)),
            rate,
            "" if fig.average_score is None else fig.average_score,
            fig.tickets,
            fig.verified_on_time,
            fig.rectified,
            fig.not_adopted,
        ]
