"""死信队列 in headless Chromium (Debian's, through Playwright): a rating's post to a central
store that is down dies after 8 tries; an admin opens the page, presses 「重新发送」 and sees
what was re-armed. Screenshot in test-artifacts/console/.

Bad inputs tried here: none beyond tests/test_console_dead_letters.py (this is the browser step).
"""

from __future__ import annotations

import random

from bridge.backoff import Backoff
from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from pingjia.composition import Services
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.test_console_browser import ARTIFACTS, DESKTOP
from tests.test_dead_letters import fail_out, outbox, rated, store  # noqa: F401  (fixture)
from tests.test_sms_browser import chromium, live  # noqa: F401  (fixtures used below)


async def test_retry_a_dead_letter_in_a_browser(
    live: tuple[Services, str],  # noqa: F811
    store: FakeCentralStore,  # noqa: F811
    clock: FakeClock,
    chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    services, url = live
    worker = OutboxWorker(
        services.sessions,
        CentralStore(store.url, timeout=2),
        clock,
        dead_letter=services.alerts.dead_letter,
        backoff=Backoff(base=10, cap=600, rng=random.Random(7)),
    )
    try:
        await rated(services, "C2026112000001")
        await fail_out(worker, clock)
    finally:
        await worker.sender.close()  # type: ignore[attr-defined]
    row = (await outbox(services))["C2026112000001"]
    assert row.dead_at is not None
    admin = await services.tokens.create("admin", "王主任", clock())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = await browser.new_context(
                viewport={"width": DESKTOP["width"], "height": DESKTOP["height"]}, locale="zh-CN"
            )
            page = await context.new_page()
            await page.goto(f"{url}/console")
            await page.get_by_label("令牌").fill(admin)
            await page.get_by_role("button", name="登录").click()
            await page.get_by_role("link", name="死信队列").click()
            line = page.locator(f'tr[data-ref="outbox-{row.id}"]')
            await line.wait_for()
            assert "评价结果" in await line.inner_text()
            await page.screenshot(path=ARTIFACTS / "5-dead-letters.png", full_page=True)
            await line.get_by_role("button", name="重新发送").click()
            notice = page.locator("#notice")
            await notice.wait_for()
            assert f"已重新发送 1 项：推送中心库 {row.id}" in await notice.inner_text()
            assert "没有死信" in await page.locator("#dead-letters").inner_text()
            await page.screenshot(path=ARTIFACTS / "6-dead-letters-retried.png", full_page=True)
        finally:
            await browser.close()
    assert (await outbox(services))["C2026112000001"].dead_at is None
