"""Storing the webhook's replies: `InboxRepository.accept`, one INSERT for a batch.

On PostgreSQL the batch goes in as one array per column (`unnest`), on SQLite as an
executemany; both must answer the same: the ids of the rows inserted, by MessageSid.

Bad inputs tried here: a MessageSid already stored (left as it was, no id), the same MessageSid
twice in one batch (one row, one id), a reply with no To number and no ciphertext (NULLs), a
time given in another zone (stored as the same instant in UTC), a naive time (refused), a
MessageSid longer than its column (refused on PostgreSQL, kept whole on SQLite, which enforces
no length: never cut to fit); and a rollback right
after the intake stored a reply (the intake stores without a transaction on PostgreSQL: the
connection it used must be transactional again for the next user).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, StatementError

from pingjia.composition import Services
from sms.replies.stage1_intake import Received
from sms.storage.inbox import InboxRepository
from sms.storage.models import SmsInbound
from tests.fakes.clock import FakeClock

BEIJING = timezone(timedelta(hours=8))


def reply(sid: str, at: datetime, **overrides: Any) -> dict[str, Any]:
    """A row as the intake builds it (sms/replies/stage1_intake.py)."""
    row = {
        "message_sid": sid,
        "phone_hash": "h" * 64,
        "phone_enc": "ciphertext-" + sid,
        "to_number": "+15005550006",
        "body": "5 态度差",
        "received_at": at,
        "claimed_at": at - timedelta(minutes=2),
    }
    row.update(overrides)
    return row


async def accept(services: Services, rows: list[dict[str, Any]]) -> dict[str, int]:
    async with services.sessions() as session:
        ids = await InboxRepository(session).accept(rows)
        await session.commit()
    return ids


async def stored(services: Services) -> dict[str, SmsInbound]:
    async with services.sessions() as session:
        rows = (await session.execute(select(SmsInbound))).scalars().all()
    return {row.message_sid: row for row in rows}


async def test_a_batch_inserts_only_new_replies_and_answers_their_ids(
    services: Services, clock: FakeClock
) -> None:
    now = clock()
    assert await accept(services, []) == {}
    first = await accept(services, [reply("SM-OLD", now, body="first")])
    assert list(first) == ["SM-OLD"]

    local = now.astimezone(BEIJING) + timedelta(seconds=1)
    ids = await accept(
        services,
        [
            reply("SM-A", now),
            reply("SM-OLD", now, body="retried"),  # stored by the batch before
            reply("SM-NULL", now, to_number=None, phone_enc=None),
            reply("SM-A", now),  # the same MessageSid twice in this batch
            reply("SM-ZONE", local),
        ],
    )
    rows = await stored(services)
    assert sorted(rows) == ["SM-A", "SM-NULL", "SM-OLD", "SM-ZONE"]
    # Each id answered is the id of the row with that MessageSid, read back from the table.
    assert ids == {sid: rows[sid].id for sid in ("SM-A", "SM-NULL", "SM-ZONE")}
    assert len(set(ids.values())) == 3
    assert rows["SM-OLD"].id == first["SM-OLD"] and rows["SM-OLD"].body == "first"
    assert rows["SM-NULL"].to_number is None and rows["SM-NULL"].phone_enc is None
    assert rows["SM-A"].to_number == "+15005550006"
    assert rows["SM-A"].phone_enc == "ciphertext-SM-A"
    zoned = rows["SM-ZONE"]
    assert zoned.received_at == local and zoned.received_at.utcoffset() == timedelta(0)
    assert zoned.claimed_at == local - timedelta(minutes=2)

    # A retry of a whole batch inserts nothing and answers no id.
    assert await accept(services, [reply("SM-A", now), reply("SM-NULL", now)]) == {}
    assert len(await stored(services)) == 4


async def test_a_naive_time_is_refused(services: Services, clock: FakeClock) -> None:
    naive = clock().replace(tzinfo=None)
    with pytest.raises(StatementError, match="naive datetime"):
        await accept(services, [reply("SM-NAIVE", naive)])
    assert await stored(services) == {}


async def test_a_too_long_message_sid_is_never_cut(
    services: Services, clock: FakeClock, database_url: str
) -> None:
    long_sid = "SM" + "9" * 63
    if not database_url.startswith("postgresql"):
        # SQLite enforces no VARCHAR length: the whole value is kept, not cut either.
        await accept(services, [reply(long_sid, clock())])
        assert list(await stored(services)) == [long_sid]
        return
    with pytest.raises(DBAPIError, match="too long"):
        await accept(services, [reply(long_sid, clock())])
    assert await stored(services) == {}


async def test_the_intake_stores_without_a_transaction_and_leaves_none_behind(
    services: Services, clock: FakeClock
) -> None:
    # On PostgreSQL the intake's INSERT runs without BEGIN/COMMIT; the connection then goes
    # back to the pool, and whoever takes it next must get a transaction that rolls back.
    received = await services.sms.inbox.intake.accept("SM-1", "+8613800000000", "", "5", clock())
    assert isinstance(received, Received) and received.row_id
    async with services.sessions() as session:
        await InboxRepository(session).accept([reply("SM-UNDONE", clock())])
        await session.rollback()
    assert sorted(await stored(services)) == ["SM-1"]
