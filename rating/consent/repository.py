"""The queries of contact consent: who opted out, opting out and back in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from rating.consent.models import ContactOptOut
from rating.db.records import SessionRepository


def opted_out_clause(phone_hash: Any) -> Any:
    """Whether the number with this hash column opted out (a correlated EXISTS for queries
    that pick whom to contact)."""
    return exists().where(ContactOptOut.phone_hash == phone_hash)


class ConsentRepository(SessionRepository):
    """Opt-outs by the number's keyed hash; the caller owns the transaction."""

    async def opted_out(self, hashes: Iterable[str]) -> set[str]:
        """Those of `hashes` that opted out."""
        wanted = list(set(hashes))
        if not wanted:
            return set()
        query = select(ContactOptOut.phone_hash).where(ContactOptOut.phone_hash.in_(wanted))
        return set((await self.session.execute(query)).scalars().all())

    async def opt_out(self, phone_hash: str, at: datetime, source_ref: str) -> None:
        """Record an opt-out; a second one keeps the first."""
        dialect = self.session.get_bind().dialect.name
        maker = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = maker(ContactOptOut).values(
            phone_hash=phone_hash, opted_out_at=at, source_ref=source_ref
        )
        await self.session.execute(statement.on_conflict_do_nothing())

    async def opt_in(self, phone_hash: str) -> bool:
        """Forget an opt-out; whether there was one."""
        result = await self.session.execute(
            delete(ContactOptOut).where(ContactOptOut.phone_hash == phone_hash)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
