"""What went in and what came out: the counts every fault test compares.

Read straight from the database with SQL, so a count does not depend on the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@dataclass(frozen=True)
class Ledger:
    ratings: int  # rating rows (every attempt kept)
    adopted: int  # adopted ratings
    evaluations_adopted_twice: int  # evaluations with more than one adopted rating (must be 0)
    tickets: int
    cases_ticketed_twice: int  # evaluations with more than one ticket (must be 0)
    outbox: dict[str, int]  # topic → rows
    outbox_sent: int
    outbox_waiting: int
    outbox_dead: int
    sms: int  # SMS rows written (every send)


async def _scalar(session: AsyncSession, sql: str) -> int:
    return int((await session.execute(text(sql))).scalar_one() or 0)


async def read_ledger(sessions: async_sessionmaker[AsyncSession]) -> Ledger:
    async with sessions() as session:
        topics = await session.execute(text("SELECT topic, count(*) FROM outbox GROUP BY topic"))
        return Ledger(
            ratings=await _scalar(session, "SELECT count(*) FROM ratings"),
            adopted=await _scalar(session, "SELECT count(*) FROM ratings WHERE adopted"),
            evaluations_adopted_twice=await _scalar(
                session,
                "SELECT count(*) FROM (SELECT evaluation_id FROM ratings WHERE adopted "
                "GROUP BY evaluation_id HAVING count(*) > 1) AS doubled",
            ),
            tickets=await _scalar(session, "SELECT count(*) FROM tickets"),
            cases_ticketed_twice=await _scalar(
                session,
                "SELECT count(*) FROM (SELECT evaluation_id FROM tickets "
                "GROUP BY evaluation_id HAVING count(*) > 1) AS doubled",
            ),
            outbox={str(topic): int(n) for topic, n in topics.all()},
            outbox_sent=await _scalar(
                session, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"
            ),
            outbox_waiting=await _scalar(
                session, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL"
            ),
            outbox_dead=await _scalar(
                session, "SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL"
            ),
            sms=await _scalar(session, "SELECT count(*) FROM sms_messages"),
        )
