"""Migration 0013_sms_reply_extension on SQLite and PostgreSQL: a reply the older code stored
with its extension as the address `ext:CODE` gets the code in `sms_inbound.extension` and no
address; other addresses are left as they are; down again writes the older form back where
no address was given, and up again gives the same rows.

Bad inputs tried: a bare `ext:` (empty code), an address that only contains `ext:` later, a
NULL address, a real number with the extension inside it (the provider reads that one).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from pingjia.composition import Services
from rating.db import engine as db
from rating.db.base import UtcDateTime

BEFORE = "0013_sms_reply_extension-1"
# to_number as the older code stored it -> (to_number, extension) after the upgrade
ROWS: dict[str, tuple[str | None, tuple[str | None, str | None]]] = {
    "aliyun-1": ("ext:4021", ("", "4021")),
    "tencent-1": ("ext:7", ("", "7")),
    "empty": ("ext:", ("", "")),
    "twilio-1": ("+15005550006", ("+15005550006", None)),
    "console-1": ("1069001234542", ("1069001234542", None)),
    "odd": ("106ext:9", ("106ext:9", None)),
    "none": (None, (None, None)),
}
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# The table as it stood before the revision: no `extension` column to write.
OLD_INBOUND = sa.table(
    "sms_inbound",
    *(sa.column(name, sa.String()) for name in ("message_sid", "phone_hash", "phone_enc")),
    *(sa.column(name, sa.String()) for name in ("to_number", "body")),
    sa.column("received_at", UtcDateTime()),
    sa.column("claimed_at", UtcDateTime()),
)


async def insert_old_rows(services: Services) -> None:
    values = [
        {"message_sid": sid, "phone_hash": "h", "phone_enc": "x", "to_number": to, "body": "1",
         "received_at": NOW, "claimed_at": NOW}
        for sid, (to, _) in ROWS.items()
    ]  # fmt: skip
    async with services.engine.begin() as conn:
        await conn.execute(OLD_INBOUND.insert(), values)


async def rows(services: Services, *columns: str) -> dict[str, tuple[str | None, ...]]:
    async with services.engine.connect() as conn:
        result = await conn.execute(
            sa.text(f"SELECT message_sid, {', '.join(columns)} FROM sms_inbound")
        )
        return {sid: tuple(rest) for sid, *rest in result.all()}


async def migrate(services: Services, target: str, down: bool = False) -> None:
    config = db.alembic_config(services.settings.database_url)
    await services.engine.dispose()
    step = command.downgrade if down else command.upgrade
    await asyncio.to_thread(step, config, target)
    await services.engine.dispose()


async def test_ext_addresses_become_the_extension_column(services: Services) -> None:
    await migrate(services, BEFORE, down=True)
    await insert_old_rows(services)
    await migrate(services, "heads")
    after = {sid: expected for sid, (_, expected) in ROWS.items()}
    assert await rows(services, "to_number", "extension") == after
    await migrate(services, BEFORE, down=True)
    # The older form is back where no address was given (the bare `ext:` too).
    old = await rows(services, "to_number")
    assert old == {sid: (to if sid != "empty" else "ext:",) for sid, (to, _) in ROWS.items()}
    await migrate(services, "heads")
    assert await rows(services, "to_number", "extension") == after
