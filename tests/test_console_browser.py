"""The console in headless Chromium (Debian's, through Playwright) at desktop size: sign in
with a token, open the queue, open a ticket, dispatch it, see the history entry, open the
statistics and their chart, the deadline board; ask for an extension the domain refuses. Each
page's visible text holds no English sentence. Screenshots go to test-artifacts/console/ (the
date fields' mm/dd/yyyy there is headless Chromium's own widget in its en-US build locale,
not our text: a Chinese browser shows 年/月/日).

Bad inputs tried here: a wrong token first (the page must say so and stay on sign-in); an
extension dated before the deadline in force (refused in Chinese, the reason typed is kept).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from pingjia.composition import Services
from tests.fakes.clock import FakeClock
from tests.test_sms_browser import chromium, live  # noqa: F401  (fixtures used below)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
AGENCY = "台山市市场监督管理局"
DESKTOP = {"width": 1280, "height": 900}
ENGLISH_SENTENCE = re.compile(r"\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\b")


async def shot(page: Any, name: str) -> None:
    """A full-page screenshot, after checking the page reads without an English sentence."""
    text = await page.locator("body").inner_text()
    assert not ENGLISH_SENTENCE.search(text), (name, ENGLISH_SENTENCE.findall(text))
    await page.screenshot(path=ARTIFACTS / name, full_page=True)


async def seed(url: str, token: str) -> list[str]:
    """Five cases rated from 非常满意 to 非常不满意 through the API: two tickets."""
    headers = {"Authorization": f"Bearer {token}"}
    tickets = []
    async with aiohttp.ClientSession(url, headers=headers) as http:
        for level in range(1, 6):
            case = f"C202611200000{level}"
            service = {
                "case_no": case,
                "kind": "complaint",
                "phone": f"1381234567{level}",
                "completed_at": "2026-11-20T17:30:00+08:00",
                "agency": AGENCY,
            }
            async with http.post("/api/v1/services", json=service) as response:
                assert response.status == 201, await response.text()
            rating = {"case_no": case, "level": level, "tags": [], "reason": "测试意见"}
            if level >= 4:
                rating["tags"] = ["staff_passive" if level == 4 else "staff_hostile"]
            async with http.post("/api/v1/ratings", json=rating) as response:
                assert response.status == 201, await response.text()
                body = await response.json()
            if body.get("ticket"):
                tickets.append(body["ticket"]["ticket_no"])
    return tickets


async def test_console_in_a_browser(
    live: tuple[Services, str],  # noqa: F811
    clock: FakeClock,
    chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    services, url = live
    agent = await services.tokens.create("agent", "api", clock())
    admin = await services.tokens.create("admin", "王主任", clock())
    tickets = await seed(url, agent)
    assert len(tickets) == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
            page = await context.new_page()
            await page.goto(f"{url}/console")
            await page.get_by_label("令牌").fill("pj_wrong")
            await page.get_by_role("button", name="登录").click()
            await page.get_by_text("令牌无效或已吊销").wait_for()
            await shot(page, "0-sign-in-refused.png")
            await page.get_by_label("令牌").fill(admin)
            await page.get_by_role("button", name="登录").click()
            await page.get_by_role("heading", name="工单队列").wait_for()
            for no in tickets:
                assert await page.get_by_role("link", name=no).is_visible()
            await shot(page, "1-queue.png")

            await page.get_by_role("link", name=tickets[0]).click()
            await page.locator("#status").get_by_text("待转办").wait_for()
            await shot(page, "2-ticket.png")
            form = page.locator('form[data-action="dispatch"]')
            await form.locator('input[name="note"]').fill("请于期限内核实")
            await form.get_by_role("button", name="转办").click()
            await page.get_by_text("已完成：转办").wait_for()
            history = page.locator("#history")
            assert "请于期限内核实" in await history.inner_text()
            assert "管理员 王主任" in await history.inner_text()
            await shot(page, "3-dispatched.png")

            await page.get_by_role("link", name="统计").click()
            await page.locator("#chart-levels svg rect.bar").first.wait_for()
            assert await page.locator("#chart-levels svg rect.bar").count() == 5
            await shot(page, "4-stats.png")

            await page.get_by_role("link", name="期限看板").click()
            await page.locator("#board-later").wait_for()
            await shot(page, "7-board.png")

            # An extension before the deadline in force: refused in Chinese, the reason kept.
            await page.goto(f"{url}/console/tickets/{tickets[1]}")
            form = page.locator('form[action$="/extensions"]')
            await form.locator('input[name="new_due_at"]').fill("2026-11-21T10:00")
            await form.locator('textarea[name="reason"]').fill("需要调取监控录像")
            await form.get_by_role("button", name="提交申请").click()
            await page.get_by_text("新的期限须晚于现行期限").wait_for()
            assert "需要调取监控录像" in await page.content()
            await shot(page, "8-extension-refused.png")
        finally:
            await browser.close()
    view = await services.tickets.get(tickets[0])
    assert view.ticket.status == "dispatched"
