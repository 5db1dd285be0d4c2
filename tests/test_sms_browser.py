"""The rating link in headless Chromium (Debian's, through Playwright) on a phone-sized screen:
open the link, choose 非常不满意, pick a tag, submit, see the thank-you. A screenshot of each
step goes to test-artifacts/sms-page/.

Bad inputs tried here: submitting 非常不满意 with no tag first (the page must say a reason is
needed and keep the choice), tags of a level other than the chosen one (hidden).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from pingjia.app import build_app
from pingjia.composition import Services, build_services
from rating.state import MemoryState
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.services import free_port, require_tool
from tests.sms_support import adopted, register, sent

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "sms-page"
PHONE_SCREEN = {"width": 390, "height": 844}


async def serve_live(
    tmp_path: Path, clock: FakeClock, **overrides: object
) -> AsyncIterator[tuple[Services, str]]:
    """pingjia on a real port, its public URL being that port (the Origin check needs it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/pingjia.db", tmp_path, public_url=url, **overrides
    )
    services = await build_services(settings, clock=clock, state=MemoryState())
    runner = web.AppRunner(build_app(services), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield services, url
    await runner.cleanup()
    await services.close()


@pytest.fixture
async def live(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Services, str]]:
    async for running in serve_live(tmp_path, clock):
        yield running


@pytest.fixture
def chromium() -> str:
    return require_tool("chromium")


async def test_rate_on_a_phone_sized_browser(
    live: tuple[Services, str], clock: FakeClock, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    services, _url = live
    await register(services, "C2026112000001")
    clock.advance(minutes=3)
    await services.sms.send_due_invitations(clock())
    link = sent(services)[0].params["link"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = await browser.new_context(
                viewport=PHONE_SCREEN,
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale="zh-CN",
            )
            page = await context.new_page()
            await page.goto(link)
            await page.get_by_text("请对本次服务进行评价").wait_for()
            await page.screenshot(path=ARTIFACTS / "1-open.png", full_page=True)

            await page.get_by_label("非常不满意").check()
            # Only the chosen level's tags show.
            assert await page.get_by_text("态度恶劣，故意刁难").is_visible()
            assert not await page.get_by_text("主动服务，热情周到").is_visible()
            await page.screenshot(path=ARTIFACTS / "2-level.png", full_page=True)

            await page.get_by_role("button", name="提交评价").click()
            await page.get_by_text("请至少选择一个原因").wait_for()
            assert await page.get_by_label("非常不满意").is_checked()
            await page.screenshot(path=ARTIFACTS / "3-reason-needed.png", full_page=True)

            await page.get_by_label("态度恶劣，故意刁难").check()
            await page.screenshot(path=ARTIFACTS / "4-tag.png", full_page=True)
            await page.get_by_role("button", name="提交评价").click()
            await page.get_by_text("感谢您的评价").wait_for()
            assert await page.get_by_text("已记录：非常不满意").is_visible()
            await page.screenshot(path=ARTIFACTS / "5-thanks.png", full_page=True)
        finally:
            await browser.close()
    rating = await adopted(services, "C2026112000001")
    assert rating is not None
    assert (rating.level, rating.channel, rating.tags) == (5, "web", ["staff_hostile"])
