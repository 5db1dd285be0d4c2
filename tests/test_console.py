"""The web console (/console) through aiohttp's test client, on SQLite and on PostgreSQL.

Bad inputs tried here: a wrong token at sign-in (401, no session), a page opened without
signing in (sent to sign-in), a form posted without its CSRF token, with another session's
token, and from a foreign Origin (403, nothing changes), a tampered session cookie (a new,
signed-out session), a step the status does not allow (409 page, nothing changes), an agent
opening the statistics (403), an agency opening another agency's ticket (404), a CSV period
with a malformed date and with `to` before `from` (422 page), an unknown group.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from console.charts import bar_chart, line_chart, percent
from pingjia.app import build_app
from pingjia.composition import Services
from tests.test_tickets import AGENCY, bad_ticket

ROLES = ("agent", "agency", "bureau", "admin")


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient:
    return await aiohttp_client(build_app(services))  # type: ignore[no-any-return]


@pytest.fixture
async def raw_tokens(services: Services) -> dict[str, str]:
    made = {}
    for role in ROLES:
        agency = AGENCY if role == "agency" else None
        made[role] = await services.tokens.create(
            role, f"{role}-1", services.clock(), agency=agency
        )
    return made


@pytest.fixture
def tokens(raw_tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    return {role: {"Authorization": f"Bearer {t}"} for role, t in raw_tokens.items()}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; the CSRF token of the signed-in session."""
    page = await client.get("/console/signin")
    response = await client.post(
        "/console/signin",
        data={"csrf": csrf_of(await page.text()), "token": token},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    queue = await client.get("/console/tickets")
    assert queue.status == 200
    return csrf_of(await queue.text())


async def test_sign_in_with_a_good_and_a_bad_token(
    client: TestClient, raw_tokens: dict[str, str]
) -> None:
    response = await client.get("/console/tickets", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/signin"
    page = await client.get("/console/signin")
    assert "登录工单控制台" in await page.text()
    cookie = page.cookies["pj_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/console"
    assert "nonce-" in page.headers["Content-Security-Policy"]
    bad = await client.post(
        "/console/signin",
        data={"csrf": csrf_of(await page.text()), "token": "pj_not-a-token"},
        allow_redirects=False,
    )
    assert bad.status == 401 and "令牌无效" in await bad.text()
    assert (await client.get("/console/tickets", allow_redirects=False)).status == 303

    csrf = await sign_in(client, raw_tokens["agent"])
    queue = await (await client.get("/console/tickets")).text()
    assert "工单队列" in queue and "话务员 · agent-1" in queue and "统计" not in queue
    out = await client.post("/console/signout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/console/tickets", allow_redirects=False)).status == 303


async def test_a_tampered_cookie_is_a_new_signed_out_session(
    client: TestClient, raw_tokens: dict[str, str]
) -> None:
    await sign_in(client, raw_tokens["admin"])
    value = client.session.cookie_jar.filter_cookies(client.make_url("/console"))["pj_console"]
    body, mac = value.value.split(".")
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(
        {"pj_console": f"{body}A.{mac}"}, client.make_url("/console")
    )
    assert (await client.get("/console/tickets", allow_redirects=False)).status == 303


async def test_csrf_is_required_on_every_post(
    client: TestClient,
    raw_tokens: dict[str, str],
    tokens: dict[str, dict[str, str]],
    services: Services,
) -> None:
    ticket = await bad_ticket(client, tokens)
    no = ticket["ticket_no"]
    csrf = await sign_in(client, raw_tokens["agent"])
    path = f"/console/tickets/{no}/act/dispatch"
    # The forged token differs from the real one in its first character, always:
    # a fixed "x" would equal it whenever the real token starts with "x" (1 in 64).
    forged = ("y" if csrf[0] == "x" else "x") + csrf[1:]
    tries: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"agency": AGENCY}, {}),
        ({"agency": AGENCY, "csrf": forged}, {}),
        ({"agency": AGENCY, "csrf": csrf}, {"Origin": "https://evil.example"}),
    ]
    for data, headers in tries:
        response = await client.post(path, data=data, headers=headers, allow_redirects=False)
        assert response.status == 403 and "页面已失效" in await response.text()
    assert (await services.tickets.get(no)).ticket.status == "new"
    signout = await client.post("/console/signout", data={}, allow_redirects=False)
    assert signout.status == 403


async def test_an_agent_dispatches_a_ticket_from_the_console(
    client: TestClient,
    raw_tokens: dict[str, str],
    tokens: dict[str, dict[str, str]],
    services: Services,
) -> None:
    ticket = await bad_ticket(client, tokens)
    no = ticket["ticket_no"]
    csrf = await sign_in(client, raw_tokens["agent"])
    queue = await (await client.get("/console/tickets")).text()
    assert no in queue and "不满意" in queue and "138****5678" in queue and "剩余" in queue
    page = await (await client.get(f"/console/tickets/{no}")).text()
    assert 'data-action="dispatch"' in page and 'data-action="close"' not in page
    assert "未配置 Asterisk" in page  # click-to-call explains why it is off

    refused = await client.post(
        f"/console/tickets/{no}/act/close", data={"csrf": csrf}, allow_redirects=False
    )
    assert refused.status == 409 and "操作未成功" in await refused.text()

    response = await client.post(
        f"/console/tickets/{no}/act/dispatch",
        data={"csrf": csrf, "agency": AGENCY, "note": "请核实"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    page = await (await client.get(response.headers["Location"])).text()
    assert "已完成：转办" in page and "已转办" in page and "请核实" in page
    view = await services.tickets.get(no)
    assert view.ticket.status == "dispatched" and view.ticket.agency == AGENCY
    assert [(e.action, e.actor) for e in view.events] == [("dispatch", "agent:agent-1")]


async def test_roles_decide_pages_and_buttons(
    client: TestClient,
    raw_tokens: dict[str, str],
    tokens: dict[str, dict[str, str]],
) -> None:
    mine = await bad_ticket(client, tokens, "C1")
    theirs = await bad_ticket(client, tokens, "C2")
    for no, agency in ((mine["ticket_no"], AGENCY), (theirs["ticket_no"], "别的单位")):
        step = await client.post(
            f"/api/v1/tickets/{no}/dispatch", json={"agency": agency}, headers=tokens["agent"]
        )
        assert step.status == 200
    await sign_in(client, raw_tokens["agent"])
    assert (await client.get("/console/stats")).status == 403
    assert (await client.get("/console/board")).status == 403

    await sign_in(client, raw_tokens["agency"])
    queue = await (await client.get("/console/tickets")).text()
    assert mine["ticket_no"] in queue and theirs["ticket_no"] not in queue
    assert (await client.get(f"/console/tickets/{theirs['ticket_no']}")).status == 404
    page = await (await client.get(f"/console/tickets/{mine['ticket_no']}")).text()
    assert 'data-action="confirm"' in page and "申请延期" in page and "一键回拨" not in page

    await sign_in(client, raw_tokens["bureau"])
    page = await (await client.get(f"/console/tickets/{mine['ticket_no']}")).text()
    assert 'data-action="not_adopt"' in page and 'data-action="confirm"' not in page
    assert "期限看板" in page
    board = await client.get("/console/board")
    assert board.status == 200 and mine["ticket_no"] in await board.text()


async def test_stats_page_charts_and_csv(
    client: TestClient,
    raw_tokens: dict[str, str],
    tokens: dict[str, dict[str, str]],
) -> None:
    await bad_ticket(client, tokens, "C1")
    await bad_ticket(client, tokens, "C2")
    await sign_in(client, raw_tokens["bureau"])
    page = await (await client.get("/console/stats?group_by=agency")).text()
    bars = dict(re.findall(r'class="bar" data-label="([^"]+)" data-value="([^"]+)"', page))
    assert bars["不满意"] == "2" and bars["满意"] == "0"
    assert bars[AGENCY] == "0"  # satisfaction rate of the agency: both ratings were bad
    assert 'class="point"' in page

    response = await client.get("/console/stats.csv?from=2026-11-01&to=2026-11-30&group_by=agency")
    assert response.status == 200
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="pingjia-stats-2026-11-01-2026-11-30.csv"'
    )
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["单位", "评价数", "非常满意"]
    assert rows[1][:2] == [AGENCY, "2"] and rows[-1][:2] == ["合计", "2"]
    assert rows[-1][rows[0].index("不满意")] == "2" and rows[-1][rows[0].index("差评工单")] == "2"

    for query in ("from=2026-13-01", "from=2026-11-30&to=2026-11-01", "group_by=planet"):
        bad = await client.get(f"/console/stats.csv?{query}")
        assert bad.status == 422 and "操作未成功" in await bad.text()


def test_bar_chart_draws_one_scaled_bar_per_item() -> None:
    svg = str(bar_chart("等级", [("满意", 3), ("<不满意>", 1)]))
    heights = [float(h) for h in re.findall(r'class="bar"[^>]* height="([0-9.]+)"', svg)]
    assert len(heights) == 2 and heights[0] == pytest.approx(heights[1] * 3)
    assert "&lt;不满意&gt;" in svg and "<不满意>" not in svg
    assert "暂无数据" in str(bar_chart("空", []))


def test_line_chart_breaks_at_days_without_data() -> None:
    svg = str(line_chart("满意率", [("11-01", 0.5), ("11-02", None), ("11-03", 1.0)], percent, 1.0))
    assert svg.count("<polyline") == 2 and svg.count('class="point"') == 2
    assert "100%" in svg and "暂无数据" in str(line_chart("空", [("11-01", None)]))


FORMULAS = ('=HYPERLINK("http://x.example","点我")', "@SUM(1+1)", "+1+2", "-3+4", "\tTAB", "\rCR")


async def test_stats_csv_neutralises_formulas_in_names(
    client: TestClient, raw_tokens: dict[str, str], tokens: dict[str, dict[str, str]]
) -> None:
    """Bad inputs tried: agency and agent names starting with = @ + - tab and CR (OWASP)."""
    for i, name in enumerate(FORMULAS):
        service = {
            "case_no": f"F{i}",
            "kind": "complaint",
            "phone": "13812345678",
            "completed_at": "2026-11-20T17:30:00+08:00",
            "agency": name,
            "agent_id": name,
        }
        response = await client.post("/api/v1/services", json=service, headers=tokens["agent"])
        assert response.status == 201, await response.text()
        rating = {"case_no": f"F{i}", "level": 2}
        response = await client.post("/api/v1/ratings", json=rating, headers=tokens["agent"])
        assert response.status == 201, await response.text()
    await sign_in(client, raw_tokens["bureau"])
    for group in ("agency", "agent"):
        response = await client.get(
            f"/console/stats.csv?from=2026-11-01&to=2026-11-30&group_by={group}"
        )
        raw = await response.read()
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        keys = {row[0] for row in rows[1:-1]}
        # str_strip_whitespace on the API drops the leading tab and CR; the rest keep their form.
        expected = {"'" + n if n[0] in "=+-@" else n.strip() for n in FORMULAS}
        assert keys == expected, keys
        assert all(
            not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r
        )


def test_safe_cell_prefixes_every_formula_start_and_leaves_the_rest() -> None:
    from console.csv_cells import safe_cell

    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{start}CMD") == f"'{start}CMD"
    assert safe_cell("台山市") == "台山市" and safe_cell("") == ""
    assert safe_cell(-3) == -3 and safe_cell(0.5) == 0.5  # numbers are numbers, not formulas
