"""Migration 0012_sms_status_words on SQLite and PostgreSQL: rows holding Twilio's status words
are mapped to ours, our own rows are left alone, and down and up again change nothing more.
Bad inputs tried: every Twilio word the old code could store, our pre-provider stages
(`pending`, `sending`), and a word of no one's (`exploded`: left for the operator to see).
"""

from __future__ import annotations

import asyncio
from typing import get_args

from alembic import command
from sqlalchemy import select

from pingjia.composition import Services
from rating.db import engine as db
from sms.providers import SmsStatus
from sms.providers.registry import PLUGINS
from sms.storage.models import STATUS_RANK, SmsMessage

BEFORE_AFTER = {
    "accepted": "queued",
    "scheduled": "queued",
    "read": "delivered",
    "canceled": "failed",
    "queued": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "pending": "pending",
    "sending": "sending",
    "exploded": "exploded",
}


def message(n: int, status: str) -> SmsMessage:
    return SmsMessage(
        dedupe_key=f"invitation:{n}",
        kind="invitation",
        phone_hash=f"h{n}",
        phone_enc="x",
        template="invitation",
        params={},
        body="【台山12345】…",
        segments=1,
        status=status,
        provider="twilio",
        provider_sid=f"SM{n}",
        attempts=1,
    )


async def statuses(services: Services) -> dict[str, str]:
    async with services.sessions() as session:
        rows = (await session.execute(select(SmsMessage))).scalars().all()
    return {row.provider_sid or "": row.status for row in rows}


async def test_twilio_words_are_mapped_to_ours(services: Services) -> None:
    config = db.alembic_config(services.settings.database_url)
    await services.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0012_sms_status_words-1")
    await services.engine.dispose()
    async with services.sessions() as session:
        session.add_all(message(n, word) for n, word in enumerate(BEFORE_AFTER))
        await session.commit()
    await services.engine.dispose()
    await asyncio.to_thread(command.upgrade, config, "heads")
    await services.engine.dispose()
    expected = {f"SM{n}": after for n, after in enumerate(BEFORE_AFTER.values())}
    assert await statuses(services) == expected
    await services.engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "0012_sms_status_words-1")
    await asyncio.to_thread(command.upgrade, config, "heads")
    await services.engine.dispose()
    assert await statuses(services) == expected


def test_every_providers_words_map_into_the_ranked_vocabulary() -> None:
    ours = set(get_args(SmsStatus))
    assert ours == {"queued", "sent", "delivered", "failed", "undelivered"}
    assert ours <= set(STATUS_RANK)
    assert set(STATUS_RANK) - ours == {"pending", "sending"}  # before the provider has it
    for plugin in PLUGINS.values():
        assert set(plugin.status_words.values()) <= ours, plugin.name
    assert PLUGINS["twilio"].status_words["read"] == "delivered"
    assert PLUGINS["tencent"].status_words == {"SUCCESS": "delivered", "FAIL": "undelivered"}
