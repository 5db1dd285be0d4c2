"""Public results in headless Chromium (Debian's, through Playwright): the bureau ticks an
agency for November in the console and saves; a phone, signed in as nobody, opens /results and
reads that agency's figures as a card. Screenshots go to test-artifacts/public-results/.

Bad inputs tried here: the public page for a month never published (the page says so).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from pingjia.composition import Services
from tests.fakes.clock import FakeClock
from tests.test_sms_browser import PHONE_SCREEN, chromium, live  # noqa: F401  (fixtures)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "public-results"
SHOWN, HIDDEN = "台山市市场监督管理局", "台山市自然资源局"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def seed(url: str, token: str) -> None:
    """Five ratings of SHOWN (非常满意 … 非常不满意) and one 满意 of HIDDEN, through the API."""
    headers = {"Authorization": f"Bearer {token}"}
    cases = [(SHOWN, level) for level in range(1, 6)] + [(HIDDEN, 2)]
    async with aiohttp.ClientSession(url, headers=headers) as http:
        for n, (agency, level) in enumerate(cases):
            service = {
                "case_no": f"C20261120{n:05d}",
                "kind": "complaint",
                "phone": f"1381234567{n}",
                "completed_at": "2026-11-20T17:30:00+08:00",
                "agency": agency,
            }
            async with http.post("/api/v1/services", json=service) as response:
                assert response.status == 201, await response.text()
            rating = {"case_no": service["case_no"], "level": level, "reason": "排队太久"}
            async with http.post("/api/v1/ratings", json=rating) as response:
                assert response.status == 201, await response.text()


@pytest.mark.article("sanmenxia", 16)
@pytest.mark.article("taishan", 23)
async def test_publish_in_the_console_and_read_on_a_phone(
    live: tuple[Services, str],  # noqa: F811
    clock: FakeClock,
    chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    services, url = live
    await seed(url, await services.tokens.create("agent", "api", clock()))
    bureau = await services.tokens.create("bureau", "李科长", clock())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            desk = await browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="zh-CN"
            )
            page = await desk.new_page()
            await page.goto(f"{url}/console/signin")
            await page.get_by_label("令牌").fill(bureau)
            await page.get_by_role("button", name="登录").click()
            await page.get_by_role("link", name="公开结果").click()
            await page.get_by_role("heading", name="公开评价结果").wait_for()
            await page.get_by_label("月份").select_option("2026-11")
            await page.get_by_role("button", name="查看").click()
            await page.get_by_label(SHOWN).check()
            assert not await page.get_by_label(HIDDEN).is_checked()
            await page.get_by_role("button", name="保存公布范围").click()
            await page.get_by_text("2026年11月已公布 1 个单位").wait_for()
            await page.screenshot(path=ARTIFACTS / "1-console.png", full_page=True)

            phone = await browser.new_context(
                viewport=PHONE_SCREEN, device_scale_factor=2, locale="zh-CN", is_mobile=True
            )
            public = await phone.new_page()
            await public.goto(f"{url}/results")
            await public.get_by_role("heading", name="2026年11月").wait_for()
            table = public.locator("#results")
            assert await table.get_by_text(SHOWN).is_visible()
            assert await table.get_by_text(HIDDEN).count() == 0
            text = await table.inner_text()
            assert "60.0%" in text and "5.40" in text  # 3 of 5 satisfied; (10+8+6+3+0)/5
            # On a phone each agency is a card: the labels are drawn beside the figures.
            width = await public.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE_SCREEN["width"], width
            await public.screenshot(path=ARTIFACTS / "2-public-phone.png", full_page=True)
            await public.goto(f"{url}/results?month=2026-10")
            await public.get_by_text("2026年10月的评价结果尚未公布").wait_for()
            await public.screenshot(path=ARTIFACTS / "3-public-unpublished.png")
        finally:
            await browser.close()
