"""The console in headless Chromium (Debian's, through Playwright) at desktop size: sign in
with a token, open the queue, open a ticket, dispatch it, see the history entry, open the
statistics and their chart. Screenshots go to test-artifacts/console/.

Bad inputs tried here: a wrong token first (the page must say so and stay on sign-in).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from pingjia.composition import Services
from tests.fakes.clock import FakeClock
from tests.test_sms_browser import chromium, live  # noqa: F401  (fixtures used below)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
AGENCY = "台山市市场监督管理局"
DESKTOP = {"width": 1280, "height": 900}


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
            await page.get_by_label("令牌").fill(admin)
            await page.get_by_role("button", name="登录").click()
            await page.get_by_role("heading", name="工单队列").wait_for()
            for no in tickets:
                assert await page.get_by_role("link", name=no).is_visible()
            await page.screenshot(path=ARTIFACTS / "1-queue.png", full_page=True)

            await page.get_by_role("link", name=tickets[0]).click()
            await page.locator("#status").get_by_text("待转办").wait_for()
            await page.screenshot(path=ARTIFACTS / "2-ticket.png", full_page=True)
            form = page.locator('form[data-action="dispatch"]')
            await form.locator('input[name="note"]').fill("请于期限内核实")
            await form.get_by_role("button", name="转办").click()
            await page.get_by_text("已完成：转办").wait_for()
            history = page.locator("#history")
            assert "请于期限内核实" in await history.inner_text()
            assert "管理员 王主任" in await history.inner_text()
            await page.screenshot(path=ARTIFACTS / "3-dispatched.png", full_page=True)

            await page.get_by_role("link", name="统计").click()
            await page.locator("#chart-levels svg rect.bar").first.wait_for()
            assert await page.locator("#chart-levels svg rect.bar").count() == 5
            await page.screenshot(path=ARTIFACTS / "4-stats.png", full_page=True)
        finally:
            await browser.close()
    view = await services.tickets.get(tickets[0])
    assert view.ticket.status == "dispatched"
