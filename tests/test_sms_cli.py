"""`pingjia sms reply` against a running server: posted to the console provider's reply
callback with the callback key, handled, printed.

Bad inputs tried: no PINGJIA_SMS_CALLBACK_KEY (refused before sending, exit 2), a key other
than the server's (the server answers 404, exit 1, nothing stored), no server listening (exit 1
with a hint), the same reply id twice (stored once); bodies the reply route refuses (not JSON,
a missing sender, an empty id, a NUL in the text, too large), each refused in Chinese.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import func, select

from pingjia import sms_cli
from pingjia.app import build_app
from pingjia.cli import main
from pingjia.composition import Services, build_services
from rating.state import MemoryState
from sms.storage.models import SmsInbound
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock
from tests.services import free_port
from tests.sms_support import PHONE, adopted, register


@pytest.fixture
async def served(tmp_path: object, clock: FakeClock) -> AsyncIterator[tuple[Services, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        tmp_path,
        public_url=url,
        sms_callback_key="cli-callback-key-0001",
    )
    services = await build_services(settings, clock=clock, state=MemoryState())
    runner = web.AppRunner(build_app(services))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield services, url
    await runner.cleanup()
    await services.close()


async def test_a_signed_reply_is_rated_and_printed(
    served: tuple[Services, str], clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    services, _ = served
    await register(services)
    clock.advance(minutes=3)
    assert await services.sms.send_due_invitations(clock()) == 1
    settings = services.settings
    for _ in range(2):  # a retry of the same MessageSid is stored once
        assert (
            await sms_cli.reply(
                settings, "SMCLI1", "+86" + PHONE, "５ 态度太差", "", base=settings.public_url
            )
            == 0
        )
    out = capsys.readouterr().out
    assert "HTTP 200" in out and "handled: rated" in out
    assert "非常不满意 (level 5) via sms" in out and "ticket " in out
    rating = await adopted(services, "C2026112000001")
    assert rating is not None and (rating.level, rating.reason) == (5, "态度太差")
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsInbound)) == 1


async def test_a_wrong_token_is_refused_by_the_server(
    served: tuple[Services, str], capsys: pytest.CaptureFixture[str]
) -> None:
    services, _ = served
    wrong = services.settings.model_copy(
        update={"sms_callback_key": SecretStr("not-the-server's-key")}
    )
    assert await sms_cli.reply(wrong, "SMCLI2", "+86" + PHONE, "1", "", base=wrong.public_url) == 1
    assert "HTTP 404" in capsys.readouterr().out
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsInbound)) == 0


async def test_no_server_and_no_token_are_told(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/x.db",
        tmp_path,
        public_url=f"http://127.0.0.1:{free_port()}",
        sms_callback_key="cli-callback-key-0001",
    )
    assert (
        await sms_cli.reply(settings, "SMX", "+86" + PHONE, "1", "", base=settings.public_url) == 1
    )
    assert "is `pingjia serve` running?" in capsys.readouterr().err
    monkeypatch.delenv("PINGJIA_SMS_CALLBACK_KEY", raising=False)
    monkeypatch.chdir(str(tmp_path))  # no .env here
    assert main(["sms", "reply", "--from", PHONE, "--body", "1"]) == 2
    assert "set PINGJIA_SMS_CALLBACK_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"{", "正文：不是有效的 JSON。"),
        (b'{"id": "", "body": "1"}', "id：至少 1 个字符"),
        (b'{"id": "x", "body": "1"}', "from：必须填写。"),
        (
            b'{"id": "x", "from": "1", "body": "1\\u0000"}',
            "body：第 2 个字符是空字符（NUL），无法保存。",
        ),
        (b'{"id": "x", "from": "1", "body": "' + b"1" * 17000 + b'"}', "正文超过"),
    ],
)
async def test_a_bad_reply_body_is_refused_in_chinese(
    served: tuple[Services, str], body: bytes, said: str
) -> None:
    services, url = served
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/sms/console/reply",
            params={"key": "cli-callback-key-0001"},
            data=body,
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            message = (await response.json())["error"]["message"]
    assert said in message, message
    assert not re.search(r"\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\b", message), message
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsInbound)) == 0
