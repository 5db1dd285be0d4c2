"""`GET /api/v1/dead-letters` and `POST /api/v1/dead-letters/retry` on both databases: items
dead-lettered by the real outbox worker and transfer sweep (tests/test_dead_letters.py's
fakes, failing every try), listed, re-armed by a bureau or admin token, and sent.

Bad inputs tried here: an agent or agency token (403) and none (401) on both routes; a body
naming nothing (`{}`, empty lists, `all: false`); `all` beside outbox_ids or ticket_nos;
non-integer ids (a string, a fraction, a word, a boolean), an id below 1 or beyond any column
(10**30, 1e300), a blank ticket number; 501 ids, 501 ticket numbers (the bound is 500 of
each); `all` not a boolean;
an unknown field; an empty body and a JSON array (400); `limit` 0, 501 and not a number; a
retry naming only an unknown id, a sent row and a ticket still being tried (409
nothing_rearmed, every refusal named, nothing changed); `all` with nothing dead (200, 0).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bridge.outbox import OutboxWorker
from bridge.ticket_system import TicketTransfer
from pingjia.composition import Services
from rating.access.models import AuditEntry
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.fakes.ticket_system import FakeTicketSystem
from tests.test_dead_letters import (  # noqa: F401  (fixtures used below)
    fail_out,
    fail_transfers,
    outbox,
    rated,
    store,
    system,
    ticket,
    transfer,
    worker,
)
from tests.test_tickets import client, tokens  # noqa: F401  (fixtures used below)

Client = TestClient[web.Request, web.Application]
LIST, RETRY = "/api/v1/dead-letters", "/api/v1/dead-letters/retry"
Tokens = dict[str, dict[str, str]]


async def call(http: Client, headers: dict[str, str], body: Any = None) -> Any:
    """GET the list (body None) or POST a retry: (status, JSON)."""
    if body is None:
        response = await http.get(LIST, headers=headers)
    else:
        response = await http.post(RETRY, json=body, headers=headers)
    return response.status, await response.json()


async def test_listed_then_retried_by_id_and_ticket_and_sent(
    services: Services,
    client: Client,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    store: FakeCentralStore,  # noqa: F811
    system: FakeTicketSystem,  # noqa: F811
    worker: OutboxWorker,  # noqa: F811
    transfer: TicketTransfer,  # noqa: F811
    clock: FakeClock,
) -> None:
    no = await rated(services, "C1", level=5)
    assert no is not None
    await fail_transfers(transfer, clock)
    await fail_out(worker, clock)
    row = (await outbox(services))["C1"]
    assert row.dead_at is not None

    status, body = await call(client, tokens["bureau"])
    assert status == 200, body
    assert (body["total"], body["outbox_total"], body["ticket_total"]) == (2, 1, 1)
    first, second = body["items"]
    assert {k: first[k] for k in ("kind", "ref", "topic", "key", "attempts")} == {
        "kind": "outbox",
        "ref": str(row.id),
        "topic": "central.rating",
        "key": row.idempotency_key,
        "attempts": 8,
    }
    assert first["dead_at"].startswith(row.dead_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert "503" in first["last_error"]
    assert (second["kind"], second["ref"], second["key"]) == ("ticket", no, f"ticket-{no}")
    assert "tickets answered 503" in second["last_error"]
    limited = await client.get(f"{LIST}?limit=1", headers=tokens["admin"])
    assert len((await limited.json())["items"]) == 1

    status, body = await call(client, tokens["bureau"], {"outbox_ids": [row.id, 9999]})
    assert status == 200, body
    assert body == {
        "rearmed": 1,
        "outbox_ids": [row.id],
        "ticket_nos": [],
        "refused": [{"kind": "outbox", "ref": "9999", "reason": "not found", "message": "未找到"}],
    }
    rearmed = (await outbox(services))["C1"]
    assert (rearmed.dead_at, rearmed.attempts, rearmed.next_attempt_at) == (None, 0, clock())
    async with services.sessions() as session:
        [audit] = (
            await session.execute(select(AuditEntry).where(AuditEntry.actor == "bureau:bureau-1"))
        ).scalars()
    assert (audit.action, audit.entity_id) == ("outbox.rearmed", str(row.id))

    store.scripts.clear()  # the store is back: the next sweep sends it
    assert (await worker.run_once()).sent == 1
    assert (await outbox(services))["C1"].sent_at is not None

    status, body = await call(client, tokens["admin"], {"ticket_nos": [no]})
    assert (status, body["rearmed"], body["ticket_nos"]) == (200, 1, [no])
    system.scripts.clear()
    assert await transfer(clock()) == 1
    assert (await ticket(services, no)).transferred_at is not None
    status, body = await call(client, tokens["bureau"])
    assert (status, body["items"], body["total"]) == (200, [], 0)


async def test_nothing_rearmed_is_409_and_all_with_nothing_dead_is_200(
    services: Services,
    client: Client,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    store: FakeCentralStore,  # noqa: F811
    worker: OutboxWorker,  # noqa: F811
    clock: FakeClock,
) -> None:
    status, body = await call(client, tokens["admin"], {"all": True})
    assert (status, body["rearmed"], body["refused"]) == (200, 0, [])

    await rated(services, "DEAD")
    await rated(services, "DEAD2")
    await fail_out(worker, clock)
    store.scripts.clear()
    await rated(services, "SENT")
    assert (await worker.run_once()).sent == 1
    waiting = await rated(services, "PENDING", level=5)  # its ticket never tried
    before = rows = await outbox(services)

    named = {"outbox_ids": [rows["SENT"].id, 9999], "ticket_nos": [waiting, "NOPE"]}
    status, body = await call(client, tokens["bureau"], named)
    assert status == 409 and body["error"]["code"] == "nothing_rearmed", body
    assert body["error"]["details"] == [  # the reason's code for programs, Chinese for people
        {
            "type": "not dead-lettered: already sent",
            "field": "outbox_ids",
            "ref": str(rows["SENT"].id),
            "message": "已发送，不在死信队列中",
        },
        {"type": "not found", "field": "outbox_ids", "ref": "9999", "message": "未找到"},
        {
            "type": "not dead-lettered: still being tried",
            "field": "ticket_nos",
            "ref": waiting,
            "message": "仍在重试中，不在死信队列中",
        },
        {"type": "not found", "field": "ticket_nos", "ref": "NOPE", "message": "未找到"},
    ]
    after = await outbox(services)
    for case_no, old in before.items():
        new = after[case_no]
        assert (new.dead_at, new.sent_at, new.attempts) == (old.dead_at, old.sent_at, old.attempts)
    assert (await ticket(services, waiting or "")).transfer_attempts == 0

    status, body = await call(client, tokens["admin"], {"all": True})
    assert status == 200, body
    assert body["rearmed"] == 2 and body["outbox_ids"] == sorted(
        [rows["DEAD"].id, rows["DEAD2"].id]
    )
    assert (await call(client, tokens["admin"]))[1]["total"] == 0


async def test_only_bureau_and_admin(
    client: Client,  # noqa: F811
    tokens: Tokens,  # noqa: F811
) -> None:
    for role in ("agent", "agency"):
        for body in (None, {"all": True}):
            status, answer = await call(client, tokens[role], body)
            assert (status, answer["error"]["code"]) == (403, "forbidden")
    assert (await client.get(LIST)).status == 401
    assert (await client.post(RETRY, json={"all": True})).status == 401
    for role in ("bureau", "admin"):
        assert (await call(client, tokens[role]))[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"outbox_ids": [], "ticket_nos": []},
        {"all": False},
        {"all": True, "outbox_ids": [1]},
        {"all": True, "ticket_nos": ["2611200001"]},
        {"outbox_ids": ["1"]},
        {"outbox_ids": [1.5]},
        {"outbox_ids": ["abc"]},
        {"outbox_ids": [0]},
        {"ticket_nos": [" "]},
        {"outbox_ids": list(range(1, 502))},
        {"ticket_nos": [f"T{i}" for i in range(501)]},
        {"outbox_ids": [True]},
        {"outbox_ids": [1e300]},
        {"outbox_ids": [10**30]},
        {"all": "yes"},
        {"everything": True},
    ],
)
async def test_bad_retry_bodies_are_422(
    client: Client,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    body: dict[str, Any],
) -> None:
    status, answer = await call(client, tokens["admin"], body)
    assert (status, answer["error"]["code"]) == (422, "invalid_input"), answer


async def test_what_the_document_calls_valid_is_taken(
    client: Client,  # noqa: F811
    tokens: Tokens,  # noqa: F811
) -> None:
    # Each list at its own bound (500 + 500: the document's maxItems, which cannot state a
    # sum), and an id written 7.0 (JSON's one number type; the document's `integer`): read,
    # and refused one by one as not found, as any retry naming unknown items.
    full = {"outbox_ids": list(range(1, 501)), "ticket_nos": [f"T{i}" for i in range(500)]}
    status, answer = await call(client, tokens["admin"], full)
    assert (status, answer["error"]["code"], len(answer["error"]["details"])) == (
        409,
        "nothing_rearmed",
        1000,
    )
    status, answer = await call(client, tokens["admin"], {"outbox_ids": [7.0]})
    assert answer["error"]["details"] == [
        {"type": "not found", "field": "outbox_ids", "ref": "7", "message": "未找到"}
    ]


async def test_bad_requests_and_the_openapi_document(
    client: Client,  # noqa: F811
    tokens: Tokens,  # noqa: F811
) -> None:
    admin = tokens["admin"]
    empty = await client.post(RETRY, data=b"", headers=admin)
    assert empty.status == 400 and (await empty.json())["error"]["code"] == "empty_body"
    array = await client.post(RETRY, json=[1], headers=admin)
    assert array.status == 400 and (await array.json())["error"]["code"] == "invalid_json"
    for limit in ("0", "501", "x"):
        response = await client.get(f"{LIST}?limit={limit}", headers=admin)
        assert response.status == 422, limit
    doc = await (await client.get("/api/openapi.json")).json()
    retry = doc["paths"][RETRY]["post"]
    assert retry["description"] == "roles: admin, bureau" and "get" in doc["paths"][LIST]
    schema = doc["components"]["schemas"]["RetryIn"]["properties"]
    assert set(schema) == {"outbox_ids", "ticket_nos", "all"}


def test_every_refusal_reason_has_its_chinese_words() -> None:
    from rating.dead_letters import desk
    from rating.words import DEAD_LETTER_REFUSALS

    reasons = {desk.NOT_FOUND, desk.ALREADY_SENT, desk.ALREADY_TRANSFERRED, desk.STILL_TRIED}
    assert reasons == set(DEAD_LETTER_REFUSALS)
