"""A voice message played in the console, in headless Chromium (Debian's, through Playwright):
an agency officer signs in, opens the ticket, presses play and the recording plays to its end.
Screenshot: test-artifacts/console/5-voice.png.

Bad inputs tried here: a ticket whose recording is gone from the shared folder shows the words
saying so, and no player.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pingjia.composition import Services
from tests.fakes.clock import FakeClock
from tests.test_sms_browser import chromium, serve_live  # noqa: F401  (chromium: a fixture)
from tests.test_voice_playback import AGENCY, ASTERISK_DIR, rated_with_voice, write_tone

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"


@pytest.fixture
async def live_voice(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Services, str]]:
    """pingjia on a real port, reading recordings from tmp_path/recordings."""
    (tmp_path / "recordings").mkdir()
    async for running in serve_live(
        tmp_path,
        clock,
        recordings_dir=ASTERISK_DIR,
        recordings_mount=str(tmp_path / "recordings"),
    ):
        yield running


async def test_an_agency_officer_plays_the_callers_voice_message(
    live_voice: tuple[Services, str],
    tmp_path: Path,
    chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    services, url = live_voice
    write_tone(tmp_path / "recordings" / "pbx1-1.1.wav", 1.5)
    no = await rated_with_voice(services, "C1", f"asterisk://pbx1{ASTERISK_DIR}/pbx1-1.1.wav")
    gone = await rated_with_voice(services, "C2", f"asterisk://pbx1{ASTERISK_DIR}/pbx1-2.2.wav")
    token = await services.tokens.create("agency", "承办人", services.clock(), agency=AGENCY)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            await page.goto(f"{url}/console")
            await page.get_by_label("令牌").fill(token)
            await page.get_by_role("button", name="登录").click()
            await page.get_by_role("link", name=no).click()
            player = page.locator("#voice audio")
            await player.wait_for()
            played = await player.evaluate(
                """audio => new Promise((resolve, reject) => {
                    audio.addEventListener("ended", () => resolve(audio.duration));
                    audio.addEventListener("error", () => reject(audio.error.code));
                    audio.play().catch(reject);
                })"""
            )
            assert played == pytest.approx(1.5, abs=0.05)  # the whole recording, decoded
            await page.screenshot(path=ARTIFACTS / "5-voice.png", full_page=True)

            await page.goto(f"{url}/console/tickets/{gone}")
            await page.get_by_text("语音留言文件不存在：pbx1-2.2.wav").wait_for()
            assert await page.locator("#voice audio").count() == 0
        finally:
            await browser.close()
