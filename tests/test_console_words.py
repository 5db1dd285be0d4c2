"""Every console page, as each role, with data in every state, and every refusal a form meets:
no internal code or English reaches a person (issue 17).

The data: tickets in every status (one whose rating is about the matter, which the bureau may
not rule not adopted), an extension waiting, one granted, one refused, a published month.
Token names, agencies, notes and reasons are Chinese, so any ASCII word on a page is the
software's own. The refusals tried: a step the status does not allow, a step the role may not
take, not adopting a rating about the matter, not adopting without evidence, an extension with
no date, one not later than the deadline, a second one waiting, deciding one twice, calling
back with no Asterisk, an unknown step, another agency's ticket, a page the role may not open.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from pingjia.composition import Services
from rating.outbox.models import OutboxItem
from rating.outbox.repository import OutboxRepository
from rating.tickets.rules import STATUSES
from tests import sqlite_app
from tests.test_console import csrf_of
from tests.test_tickets import AGENCY, bad_ticket, step

database_url = sqlite_app.database_url  # the app on SQLite only
client = sqlite_app.client

NAMES = {"agent": "话务员甲", "agency": "承办单位乙", "bureau": "主管部门丙", "admin": "管理员丁"}
# What a person may read in ASCII: product and format names, and what they type themselves.
ALLOWED = {"Asterisk", "AMI", "CSV", "YYYY", "MM", "DD", "pj_"}
WORD = re.compile(r"[A-Za-z][A-Za-z_]+")
SHOWN_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")


class Shown(HTMLParser):
    """The text a person reads on a page: text outside scripts and styles, and the attributes
    a browser shows."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        self.parts += [v for k, v in attrs if k in SHOWN_ATTRIBUTES and v]
        if tag == "input" and ("type", "submit") in attrs:
            self.parts += [v for k, v in attrs if k == "value" and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def ascii_words(html: str) -> set[str]:
    shown = Shown()
    shown.feed(html)
    return {w for w in WORD.findall(" ".join(shown.parts)) if w not in ALLOWED}


def test_the_check_finds_what_it_must() -> None:
    page = (
        "<p>申请将「callback」延至</p><script>var extension_requested;</script>"
        '<input placeholder="agency name"><p>使用 Asterisk 回拨；C1 已评价</p>'
    )
    assert ascii_words(page) == {"callback", "agency", "name"}


async def _tokens(services: Services) -> dict[str, str]:
    made = {}
    for role, name in NAMES.items():
        agency = AGENCY if role == "agency" else None
        made[role] = await services.tokens.create(role, name, services.clock(), agency=agency)
    return made


async def _every_state(client: TestClient, headers: dict[str, dict[str, str]]) -> dict[str, str]:
    """A ticket in every status and the extensions' three states; their numbers by name."""
    made: dict[str, str] = {}
    names = ("new", "dispatched", "matter", "refused_ext", *STATUSES[2:])
    for number, name in enumerate(names, 1):
        tags = ["extra_materials"] if name == "matter" else None
        case_no = f"C2026112000{number:03d}"  # data in no letters: any word is the software's
        made[name] = (await bad_ticket(client, headers, case_no, tags))["ticket_no"]
    walks = {
        "dispatched": [("agent", "dispatch")],
        "matter": [("agent", "dispatch")],
        "refused_ext": [("agent", "dispatch")],
        "confirmed": [("agent", "dispatch"), ("agency", "confirm")],
        "not_adopted": [("agent", "dispatch"), ("bureau", "not-adopt")],
        "rectifying": [("agent", "dispatch"), ("agency", "confirm"), ("agency", "start-rectify")],
        "rectified": [
            ("agent", "dispatch"),
            ("agency", "confirm"),
            ("agency", "start-rectify"),
            ("agency", "rectify"),
        ],
        "closed": [("agent", "dispatch"), ("bureau", "not-adopt"), ("bureau", "close")],
    }
    bodies = {
        "dispatch": {"agency": AGENCY, "note": "请核实"},
        "not-adopt": {"evidence": "通话录音为证"},
        "rectify": {"feedback": "已整改"},
    }
    for name, steps in walks.items():
        for role, path in steps:
            body = bodies.get(path, {"note": "已处理"})
            status, answer = await step(client, headers[role], made[name], path, body)
            assert status == 200, answer
    ask = {"new_due_at": "2026-12-20T18:00:00+08:00", "reason": "需现场核查"}
    for name, verb in (("dispatched", None), ("matter", "grant"), ("refused_ext", "refuse")):
        status, answer = await step(client, headers["agency"], made[name], "extensions", ask)
        assert status == 201, answer
        if verb:
            path = f"extensions/{answer['extensions'][0]['id']}/{verb}"
            status, answer = await step(client, headers["bureau"], made[name], path, {})
            assert status == 200, answer
    return made


async def sign_in_as(client: TestClient, token: str) -> str:
    client.session.cookie_jar.clear()
    page = await client.get("/console/signin")
    assert not ascii_words(await page.text())
    response = await client.post(
        "/console/signin",
        data={"csrf": csrf_of(await page.text()), "token": token},
        allow_redirects=False,
    )
    assert response.status == 303
    return csrf_of(await (await client.get("/console/tickets")).text())


async def test_every_page_as_every_role_shows_no_code_or_english(
    client: TestClient, services: Services
) -> None:
    raw = await _tokens(services)
    headers = {role: {"Authorization": f"Bearer {t}"} for role, t in raw.items()}
    tickets = await _every_state(client, headers)
    # Deadline alerts on the board: the sweep past the deadlines (their SMS skipped: no contact).
    later = services.clock() + timedelta(days=16)
    assert await services.alerts.sweep_deadlines(later) > 0
    # A dead letter for the desk: the first row for the central store, given up on.
    async with services.sessions() as session:
        first = (await session.execute(select(OutboxItem).order_by(OutboxItem.id))).scalar()
        assert first is not None
        await OutboxRepository(session).bury(first.id, 8, later, "中心库拒收：字段缺失")
        await session.commit()
    csrf = await sign_in_as(client, raw["admin"])
    published = await client.post(
        "/console/results",
        data={"csrf": csrf, "month": "2026-11", "agency": AGENCY},
        allow_redirects=False,
    )
    assert published.status == 303, await published.text()
    walked = 0
    for role, token in raw.items():
        await sign_in_as(client, token)
        paths = ["/console/tickets", *(f"/console/tickets?status={s}" for s in STATUSES)]
        paths += [f"/console/tickets/{no}" for no in tickets.values()]
        if role in ("bureau", "admin"):
            paths += ["/console/board", "/console/dead-letters", "/console/results"]
            paths += [f"/console/stats?group_by={g}" for g in ("agency", "agent", "channel", "day")]
        else:
            paths += ["/console/stats", "/console/board"]  # 403 pages, in Chinese too
        paths += ["/console/tickets/没有这张工单", published.headers["Location"]]
        for path in paths:
            response = await client.get(path)
            assert response.status in (200, 403, 404), path
            page = await response.text()
            assert not ascii_words(page), (role, path, ascii_words(page))
            walked += 1
    assert walked > 60
    for path in ("/results", "/results?month=2026-11", "/results?month=2026-10"):
        page = await (await client.get(path)).text()
        assert not ascii_words(page), (path, ascii_words(page))
    # The names the issue found in English, now in Chinese on the pages that show them.
    await sign_in_as(client, raw["bureau"])
    page = await (await client.get(f"/console/tickets/{tickets['matter']}")).text()
    assert "回访核实（当前）" in page and "申请将「回访核实」延至" in page
    assert "申请延期" in page and "批准延期" in page and "承办单位 承办单位乙" in page
    dead = await (await client.get("/console/dead-letters")).text()
    assert "<td>评价结果</td>" in dead and "中心库拒收" in dead
    board = await (await client.get("/console/board")).text()
    assert "<td>未发送</td>" in board and "逾期" in board
    # The CSV names groups as the page does: a blank as 未填写, a channel by its name.
    period = "from=2026-11-01&to=2026-11-30"
    for group, name in (("agent", "未填写"), ("channel", "人工录入")):
        shown = await (await client.get(f"/console/stats?{period}&group_by={group}")).text()
        sheet = await (await client.get(f"/console/stats.csv?{period}&group_by={group}")).text()
        rows = [line.split(",")[0] for line in sheet.strip().splitlines()[1:]]
        assert f"<td>{name}</td>" in shown and rows == [name, "合计"], (group, rows)


def later_ask() -> dict[str, str]:
    return {"new_due_at": "2027-01-20T09:00", "reason": "再次申请"}


async def _refused(
    client: TestClient, path: str, form: dict[str, str], status: int
) -> tuple[str, str]:
    response = await client.post(path, data=form, allow_redirects=False)
    page = await response.text()
    assert response.status == status, (path, page[-600:])
    assert "操作未成功" in page and not ascii_words(page), (path, ascii_words(page))
    error = re.search(r'id="error">操作未成功：([^<]+)<', page)
    assert error, path
    return page, error.group(1)


async def test_every_refusal_on_the_console_is_chinese_and_keeps_what_was_typed(
    client: TestClient, services: Services
) -> None:
    raw = await _tokens(services)
    headers = {role: {"Authorization": f"Bearer {t}"} for role, t in raw.items()}
    tickets = await _every_state(client, headers)
    base = "/console/tickets/{}".format

    csrf = await sign_in_as(client, raw["bureau"])
    # The bureau is offered 核实不予采纳 only where the profile allows it; elsewhere it is
    # shown disabled with the reason.
    staff = await (await client.get(base(tickets["dispatched"]))).text()
    assert 'data-action="not_adopt"' in staff
    matter = await (await client.get(base(tickets["matter"]))).text()
    assert 'data-action="not_adopt"' not in matter
    assert 'data-disabled-action="not_adopt"' in matter
    assert "不能办理：本市规定只有涉及工作人员的差评可以核实不予采纳" in matter
    assert 'data-disabled-action="confirm"' in matter and "主管部门不能办理「核实属实」" in matter

    typed = "市民提供的录音与事实不符，附件三份"
    page, error = await _refused(
        client,
        base(tickets["matter"]) + "/act/not_adopt",
        {"csrf": csrf, "evidence": typed, "note": "申诉备注"},
        409,
    )
    assert error.startswith("本市规定只有涉及工作人员的差评") and "办理事项" in error
    # The typed evidence is not lost, and the address becomes the ticket's again.
    assert typed in page and "申诉备注" in page
    assert f'history.replaceState(null, "", "{base(tickets["matter"])}")' in page
    back = await client.get(base(tickets["matter"]) + "/act/not_adopt", allow_redirects=False)
    assert back.status == 303 and back.headers["Location"] == base(tickets["matter"])

    _, error = await _refused(
        client, base(tickets["dispatched"]) + "/act/not_adopt", {"csrf": csrf}, 422
    )
    assert error == "核实不予采纳须提供证据。"
    _, error = await _refused(client, base(tickets["new"]) + "/act/close", {"csrf": csrf}, 409)
    assert error == "工单当前状态为「待转办」，不能办理「办结」；现在可以办理：转办。"
    _, error = await _refused(client, base(tickets["new"]) + "/act/confirm", {"csrf": csrf}, 403)
    assert error.startswith("主管部门不能办理「核实属实」；可以办理的是：")
    extension = (await services.tickets.get(tickets["dispatched"])).extensions[0]
    decide = base(tickets["dispatched"]) + f"/extensions/{extension.id}/grant"
    assert (await client.post(decide, data={"csrf": csrf}, allow_redirects=False)).status == 303
    _, error = await _refused(client, decide, {"csrf": csrf}, 409)
    assert error == "该延期申请已批准，不能再次审批。"
    response = await client.post(base(tickets["new"]) + "/act/nothing", data={"csrf": csrf})
    # Only what the user typed in the address comes back in ASCII.
    text = await response.text()
    assert response.status == 404 and "没有名为 nothing 的办理步骤" in text
    assert ascii_words(text) == {"nothing"}

    csrf = await sign_in_as(client, raw["agency"])
    _, error = await _refused(
        client, base(tickets["confirmed"]) + "/extensions", {"csrf": csrf, **later_ask()}, 409
    )
    assert error == "工单当前状态为「核实属实」，没有可以延期的期限。"
    ask = base(tickets["matter"]) + "/extensions"
    page, error = await _refused(client, ask, {"csrf": csrf, "reason": "需要补充材料"}, 422)
    assert error == "请填写新的期限（日期和时间）。" and "需要补充材料" in page
    early = {"csrf": csrf, "new_due_at": "2026-11-21T09:00", "reason": "太早"}
    _, error = await _refused(client, ask, early, 422)
    assert error.startswith("新的期限须晚于现行期限（2026-12-20 18:00")
    later = {"csrf": csrf, **later_ask()}
    assert (await client.post(ask, data=later, allow_redirects=False)).status == 303
    _, error = await _refused(client, ask, later, 409)
    assert error == "该工单已有一项延期申请等待主管部门审批。"

    csrf = await sign_in_as(client, raw["agent"])
    page, error = await _refused(
        client, base(tickets["new"]) + "/callback", {"csrf": csrf, "extension": "8001"}, 422
    )
    # No callback form is shown without Asterisk: what was typed is kept beside the refusal.
    assert error.startswith("未配置 Asterisk 呼叫服务")
    assert "<textarea readonly>8001</textarea>" in page
    _, error = await _refused(
        client, base(tickets["new"]) + "/extensions", {"csrf": csrf, **later_ask()}, 403
    )
    assert error == "话务员不能申请延期：延期由承办单位申请。"


async def test_console_slash_moves_to_console(client: TestClient) -> None:
    response = await client.get("/console/", allow_redirects=False)
    assert response.status == 301 and response.headers["Location"] == "/console"
