"""Queries of the SMS inbox: replies stored by the webhook, claimed for handling, handled.

A reply is inserted once per MessageSid (providers retry their callbacks) and claimed by the
process that stored it; a claim older than the stale limit whose reply is still unhandled died
with its process, and the sweep takes it over (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
sweeping processes never take the same reply).

Replies are handled in batches (sms/replies/pipeline.py), so what the decision reads is read
for many numbers at once and what it writes is one executemany: plain-row Core statements, compiled
once and cached, no ORM objects (their per-statement CPU was what capped replies per second).
On PostgreSQL the webhook's stored replies go in as one array per column (`unnest`), so the
statement's text is the same whatever the batch's size and asyncpg prepares it once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    TextClause,
    bindparam,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

from rating.cases.models import Case, Evaluation
from rating.db.bulk_sql import unindexed
from rating.db.records import SessionRepository
from rating.tickets.models import SecondRatingInvite
from sms.storage.models import STARTED_KINDS, SmsInbound, SmsMessage

INBOUND = SmsInbound.metadata.tables["sms_inbound"]
MESSAGES = SmsMessage.metadata.tables["sms_messages"]
EVALUATIONS = Evaluation.metadata.tables["evaluations"]
CASES = Case.metadata.tables["cases"]
INVITES = SecondRatingInvite.metadata.tables["second_rating_invites"]
MAX_ID = 2**31 - 1  # an extension code beyond the id column's range names no evaluation


@dataclass(frozen=True)
class Invited:
    """A message to a number about an evaluation: a first-rating invitation or reminder, or a
    second-rating invitation, with the evaluation's case and status."""

    phone_hash: str
    created_at: datetime
    message_id: int
    evaluation_id: int
    case_no: str
    status: str


@dataclass(frozen=True)
class Named:
    """An evaluation an extension code names, with its case's number (by keyed hash)."""

    evaluation_id: int
    case_no: str
    status: str
    phone_hash: str | None


@dataclass(frozen=True)
class HeldAnswer:
    """An answer taken from `held` to `sending`: what the provider needs."""

    id: int
    phone_enc: str
    template: str
    params: dict[str, str]
    body: str
    dedupe_key: str
    ext_code: str | None


def _array_of(column: Column[Any]) -> tuple[str, TypeEngine[Any]]:
    """The PostgreSQL array type a column's values are sent in, and the type each value is
    bound through. Strings without their length: a cast to VARCHAR(n) would cut a longer
    value, where the INSERT's own assignment refuses it, as an INSERT of plain values does."""
    kind = column.type
    if isinstance(kind, String):  # Text too
        return "TEXT[]", Text()
    if isinstance(kind, Integer):
        return "INTEGER[]", Integer()
    impl = getattr(kind, "impl", kind)  # UtcDateTime: a DateTime(timezone=True) underneath
    if isinstance(impl, DateTime) and impl.timezone:
        return "TIMESTAMPTZ[]", kind  # through its own processing: aware, in UTC
    raise TypeError(f"{column.table.name}.{column.name}: no array type for {kind!r}")


@lru_cache(maxsize=8)
def _unnest_insert(table: Table, unique: str, columns: tuple[str, ...]) -> TextClause:
    """INSERT … SELECT FROM unnest(one array per column) … ON CONFLICT DO NOTHING RETURNING:
    one statement for any number of rows. Each value is bound through its column's type, as
    it would be one row at a time (UtcDateTime: aware, in UTC; None: NULL)."""
    arrays = {name: _array_of(table.c[name]) for name in columns}
    unnest = ", ".join(f"CAST(:{name} AS {sql})" for name, (sql, _) in arrays.items())
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({unnest}) "
        f"ON CONFLICT ({unique}) DO NOTHING RETURNING id, {unique}"
    )
    return statement.bindparams(
        *(bindparam(name, type_=postgresql.ARRAY(kind)) for name, (_, kind) in arrays.items())
    )


def _invited(*conditions: Any, second: bool = False) -> Any:
    m, e = MESSAGES.c, EVALUATIONS.c
    joined = MESSAGES.join(EVALUATIONS, e.id == m.evaluation_id).join(
        CASES, CASES.c.id == e.case_id
    )
    if second:
        joined = joined.join(INVITES, INVITES.c.evaluation_id == e.id)
    columns = (m.phone_hash, m.created_at, m.id, e.id, CASES.c.case_no, e.status)
    return select(*columns).select_from(joined).where(*conditions)


class InboxRepository(SessionRepository):
    async def accept(self, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert the replies not stored before (the same columns in every row), in one
        statement whatever their number; their ids by MessageSid. A MessageSid stored before
        gets no id and changes nothing; one repeated in the batch is stored once."""
        if rows and self.session.get_bind().dialect.name == "postgresql":
            columns = tuple(rows[0])
            statement = _unnest_insert(INBOUND, "message_sid", columns)
            arrays = {name: [row[name] for row in rows] for name in columns}
            result = await self.session.execute(statement, arrays)
            return {str(sid): int(row_id) for row_id, sid in result.all()}
        return await self._insert_new(INBOUND, INBOUND.c.message_sid, rows)

    async def _insert_new(
        self, table: Table, unique: Column[Any], rows: Sequence[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert the rows whose `unique` value is not stored yet: the new ids by that value.

        executemany: compiled once and cached ("insertmanyvalues" still sends one INSERT per
        1,000 rows); a VALUES list built per batch was compiled anew for every batch size. On
        the table, not the mapped class: the ORM's bulk-insert path cost CPU per row. The
        SQL that insertmanyvalues sends still lists one VALUES row per row, so asyncpg
        prepares it anew for each batch size: the replies use `_unnest_insert` on PostgreSQL
        (the answers stay here: their JSON params would need a json[] array)."""
        if not rows:
            return {}
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(table)
            .on_conflict_do_nothing(index_elements=[unique])
            .returning(table.c.id, unique)
        )
        result = await self.session.execute(statement, list(rows))
        return {str(key): int(row_id) for row_id, key in result.all()}

    async def claim_stale(
        self, now: datetime, claimed_before: datetime, limit: int
    ) -> Sequence[SmsInbound]:
        """Unhandled replies claimed before `claimed_before` (their handler died), claimed
        again now, oldest first. Rows stored before the inbox kept the sender are left."""
        result = await self.session.execute(
            select(SmsInbound)
            .where(
                SmsInbound.handled_at.is_(None),
                SmsInbound.claimed_at <= claimed_before,
                SmsInbound.phone_enc.is_not(None),
            )
            .order_by(SmsInbound.claimed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = result.scalars().all()
        if rows:
            await self.session.execute(
                update(SmsInbound)
                .where(SmsInbound.id.in_([r.id for r in rows]))
                .values(claimed_at=now)
                .execution_options(synchronize_session=False)
            )
        return rows

    # --- what a batch of replies needs read, for many numbers at once --------------------------

    async def invitations_to(self, hashes: Collection[str]) -> list[Invited]:
        """Every invitation and reminder to these numbers, with its evaluation."""
        if not hashes:
            return []
        m = MESSAGES.c
        query = _invited(m.phone_hash.in_(list(hashes)), m.kind.in_(STARTED_KINDS))
        return [Invited(*row) for row in (await self.session.execute(query)).all()]

    async def registered_to(self, hashes: Collection[str], since: datetime) -> list[Invited]:
        """The evaluations whose case has one of these numbers and is pending, or was
        registered since `since`, invited or not, each as an `Invited` dated by the case's
        registration, with no message (id 0): a reply rates its evaluation even before the
        invitation went out (SPEC section 4)."""
        if not hashes:
            return []
        e, c = EVALUATIONS.c, CASES.c
        query = (
            select(c.phone_hash, c.created_at, literal(0), e.id, c.case_no, e.status)
            .select_from(EVALUATIONS.join(CASES, c.id == e.case_id))
            .where(
                c.phone_hash.in_(list(hashes)),
                or_(e.status == "pending", c.created_at >= since),
            )
        )
        return [Invited(*row) for row in (await self.session.execute(query)).all()]

    async def due_dates(self, evaluation_ids: Collection[int]) -> dict[int, datetime]:
        """When these evaluations default (their rating links expire then), by id."""
        if not evaluation_ids:
            return {}
        e = EVALUATIONS.c
        query = select(e.id, e.default_due_at).where(e.id.in_(list(evaluation_ids)))
        return {row[0]: row[1] for row in (await self.session.execute(query)).all()}

    async def second_invitations_to(
        self, hashes: Collection[str], since: datetime
    ) -> list[Invited]:
        """Second-rating invitations sent to these numbers since `since` whose invitation is
        still unanswered."""
        if not hashes:
            return []
        m = MESSAGES.c
        query = _invited(
            m.phone_hash.in_(list(hashes)),
            m.kind == "second_invite",
            m.status.not_in(("suppressed", "held")),
            m.created_at >= since,
            INVITES.c.rating_id.is_(None),
            second=True,
        )
        return [Invited(*row) for row in (await self.session.execute(query)).all()]

    async def named(self, evaluation_ids: Collection[int]) -> dict[int, Named]:
        """The evaluations these extension codes name, by id (unknown ids are left out)."""
        wanted = [i for i in evaluation_ids if 0 < i <= MAX_ID]
        if not wanted:
            return {}
        e, c = EVALUATIONS.c, CASES.c
        query = (
            select(e.id, c.case_no, e.status, c.phone_hash)
            .select_from(EVALUATIONS.join(CASES, c.id == e.case_id))
            .where(e.id.in_(wanted))
        )
        return {row[0]: Named(*row) for row in (await self.session.execute(query)).all()}

    # --- what a batch of replies writes ---------------------------------------------------------

    async def add_answers(self, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert answers (every column but the id, in every row) unless their dedupe key
        exists: one executemany; the ids of those inserted, by dedupe key."""
        return await self._insert_new(MESSAGES, MESSAGES.c.dedupe_key, rows)

    async def mark_handled(self, handled: Sequence[tuple[str, str, datetime]]) -> None:
        """Replies' outcomes, (MessageSid, outcome, handled at) each: one executemany."""
        if not handled:
            return
        statement = (
            update(INBOUND)
            .where(INBOUND.c.message_sid == bindparam("_sid"))
            .values(outcome=bindparam("_outcome"), handled_at=bindparam("_at"))
        )
        params = [{"_sid": sid, "_outcome": outcome, "_at": at} for sid, outcome, at in handled]
        await self.session.execute(statement, params)

    async def take_held(self, message_ids: Collection[int]) -> list[HeldAnswer]:
        """Held -> sending for these answers, unless somebody (the notices sweep) took one
        first: by one compare-and-set, the rows taken."""
        if not message_ids:
            return []
        m = MESSAGES.c
        statement = (
            update(MESSAGES)
            .where(m.id.in_(list(message_ids)), unindexed(m.status) == "held")
            .values(status="sending", next_attempt_at=None)
            .returning(m.id, m.phone_enc, m.template, m.params, m.body, m.dedupe_key, m.ext_code)
        )
        return [HeldAnswer(*row) for row in (await self.session.execute(statement)).all()]
