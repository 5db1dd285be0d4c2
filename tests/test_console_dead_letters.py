"""死信队列 in the console (/console/dead-letters) on SQLite and on PostgreSQL: items
dead-lettered by the real outbox worker and transfer sweep (tests/test_dead_letters.py),
listed in Chinese with local times, re-armed one by one and all at once through CSRF forms.

Bad inputs tried here: an agent and an agency opening the page and posting a retry (403, no
link in their menu), a retry without its CSRF token (403, nothing changes), a retry naming
nothing and one with a non-numeric id (422 page), a row re-armed twice (the second is refused
and named).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient

from bridge.outbox import OutboxWorker
from bridge.ticket_system import TicketTransfer
from pingjia.composition import Services
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.fakes.ticket_system import FakeTicketSystem
from tests.test_console import client, raw_tokens, sign_in  # noqa: F401  (fixtures used below)
from tests.test_dead_letters import (  # noqa: F401  (fixtures used below)
    SHANGHAI,
    fail_out,
    fail_transfers,
    outbox,
    rated,
    store,
    system,
    transfer,
    worker,
)

Client = TestClient[web.Request, web.Application]
PAGE, RETRY = "/console/dead-letters", "/console/dead-letters/retry"


async def retry(http: Client, data: dict[str, str]) -> tuple[int, str]:
    """Post the form; after the redirect, the page's notice and refusal texts."""
    response = await http.post(RETRY, data=data, allow_redirects=False)
    if response.status != 303:
        return response.status, await response.text()
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    page = await http.get(response.headers["Location"])
    assert page.status == 200
    return 303, " / ".join(query.get("notice", []) + query.get("error", []))


async def test_dead_letters_page_lists_and_retries(
    services: Services,
    client: Client,  # noqa: F811
    raw_tokens: dict[str, str],  # noqa: F811
    store: FakeCentralStore,  # noqa: F811
    system: FakeTicketSystem,  # noqa: F811
    worker: OutboxWorker,  # noqa: F811
    transfer: TicketTransfer,  # noqa: F811
    clock: FakeClock,
) -> None:
    csrf = await sign_in(client, raw_tokens["bureau"])
    page = await (await client.get(PAGE)).text()
    assert "死信队列" in page and "没有死信" in page and "全部重新发送" not in page

    await rated(services, "C1")
    no = await rated(services, "C2", level=5)
    await fail_out(worker, clock)
    await fail_transfers(transfer, clock)
    rows = await outbox(services)
    page = await (await client.get(PAGE)).text()
    for head in ("类型", "编号/工单号", "主题", "尝试次数", "停止时间", "最后错误"):
        assert f"<th>{head}</th>" in page
    assert "共 3 项：推送中心库 2 项，转办12345 1 项" in page
    dead_at = rows["C1"].dead_at
    assert dead_at is not None
    assert dead_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") in page
    assert f'data-ref="ticket-{no}"' in page and "tickets answered 503" in page
    assert page.count(">重新发送</button>") == 3 and 'id="retry-all"' in page

    before = await outbox(services)
    status, text = await retry(client, {"outbox_id": str(rows["C1"].id)})  # no CSRF token
    assert status == 403 and "页面已失效" in text
    assert (await outbox(services))["C1"].dead_at == before["C1"].dead_at

    status, text = await retry(client, {"csrf": csrf, "outbox_id": str(rows["C1"].id)})
    assert (status, text) == (
        303,
        f"已重新发送 1 项：推送中心库 {rows['C1'].id}。后台任务将在下一轮发送。",
    )
    assert (await outbox(services))["C1"].dead_at is None
    status, text = await retry(client, {"csrf": csrf, "outbox_id": str(rows["C1"].id)})
    assert text == f"未重新发送：推送中心库 {rows['C1'].id}（仍在重试中，不在死信队列中）"
    for bad in ({"csrf": csrf}, {"csrf": csrf, "outbox_id": "12a"}):
        status, text = await retry(client, bad)
        assert status == 422 and "操作未成功" in text

    status, text = await retry(client, {"csrf": csrf, "all": "1"})
    assert text.startswith("已重新发送 2 项：") and f"转办12345 {no}" in text
    page = await (await client.get(PAGE)).text()
    assert "没有死信" in page
    status, text = await retry(client, {"csrf": csrf, "all": "1"})
    assert text == "没有死信，无需重新发送。"


async def test_only_bureau_and_admin_see_the_page(
    client: Client,  # noqa: F811
    raw_tokens: dict[str, str],  # noqa: F811
) -> None:
    for role in ("agent", "agency"):
        csrf = await sign_in(client, raw_tokens[role])
        queue = await (await client.get("/console/tickets")).text()
        assert "死信队列" not in queue
        page = await client.get(PAGE)
        assert page.status == 403 and "无权访问" in await page.text()
        status, _ = await retry(client, {"csrf": csrf, "all": "1"})
        assert status == 403
    for role in ("bureau", "admin"):
        await sign_in(client, raw_tokens[role])
        queue = await (await client.get("/console/tickets")).text()
        assert 'href="/console/dead-letters"' in queue
        assert (await client.get(PAGE)).status == 200
