"""The SMS sweeps' claims and outcomes, as plain-row statements.

A sweep claims evaluations by the hundred. As ORM objects (identity map, the `ratings`
selectin load of every evaluation, a unit-of-work flush for the new links and messages) a
claim cost about as much CPU as sending its batch did (bench/README.md, SMS). These read
tuples and write with one executemany per table; `SmsRepository` keeps the other SMS queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, insert, inspect, select, update
from sqlalchemy.orm import aliased

from rating.cases.models import Case, Evaluation
from rating.links.repository import LinkRepository
from sms.storage.models import SmsMessage
from sms.storage.repository import SmsRepository

MESSAGES = SmsMessage.metadata.tables["sms_messages"]
# Every column but the key: one executemany needs the same keys in every row.
MESSAGE_COLUMNS = [a.key for a in inspect(SmsMessage).column_attrs if a.key != "id"]


@dataclass(frozen=True)
class DueEvaluation:
    """What a claim needs of a due evaluation and its case."""

    id: int
    case_no: str
    phone_hash: str | None
    phone_enc: str | None
    default_due_at: datetime


def _message_of(kind: str) -> Any:
    return exists().where(SmsMessage.evaluation_id == Evaluation.id, SmsMessage.kind == kind)


def _due(*conditions: Any) -> Any:
    return (
        select(
            Evaluation.id,
            Case.case_no,
            Case.phone_hash,
            Case.phone_enc,
            Evaluation.default_due_at,
        )
        .join(Case, Case.id == Evaluation.case_id)
        .where(Evaluation.status == "pending", *conditions)
        .order_by(Evaluation.id)
    )


class SweepRepository(SmsRepository):
    """The sweeps' queries over one session (rows locked FOR UPDATE SKIP LOCKED, which SQLite
    ignores); the caller owns the transaction."""

    async def due_invitations(
        self, registered_before: datetime, now: datetime, limit: int
    ) -> list[DueEvaluation]:
        """Pending evaluations with a phone, registered before the grace ends, not yet invited."""
        query = _due(
            Evaluation.default_due_at > now,
            Case.phone_enc.is_not(None),
            Case.created_at <= registered_before,
            ~_message_of("invitation"),
        )
        return await self._locked(query, limit)

    async def due_reminders(
        self, invited_before: datetime, now: datetime, limit: int
    ) -> list[DueEvaluation]:
        """Pending evaluations past their reminder time, invited long enough ago, not reminded."""
        invitation = aliased(SmsMessage)
        invited = exists().where(
            invitation.evaluation_id == Evaluation.id,
            invitation.kind == "invitation",
            invitation.status.not_in(("suppressed",)),
            invitation.created_at <= invited_before,
        )
        query = _due(
            Evaluation.reminder_due_at <= now,
            Evaluation.default_due_at > now,
            invited,
            ~_message_of("reminder"),
        )
        return await self._locked(query, limit)

    async def _locked(self, query: Any, limit: int) -> list[DueEvaluation]:
        query = query.limit(limit).with_for_update(skip_locked=True, of=Evaluation)
        return [DueEvaluation(*row) for row in (await self.session.execute(query)).all()]

    async def link_tokens(self, evaluation_ids: Iterable[int]) -> dict[int, str]:
        """The rating-link tokens these evaluations already have (the domain's rating links)."""
        return await LinkRepository(self.session).tokens_for(evaluation_ids)

    async def add_links(self, links: Sequence[dict[str, Any]]) -> None:
        """New rating links (token, evaluation_id, created_at, expires_at): one executemany."""
        await LinkRepository(self.session).add_many(links)

    async def add_messages(self, rows: Sequence[SmsMessage]) -> None:
        """Insert new (transient) message rows with one executemany and set their ids."""
        if not rows:
            return
        values = [{key: getattr(row, key) for key in MESSAGE_COLUMNS} for row in rows]
        statement = insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True)
        ids = (await self.session.execute(statement, values)).scalars().all()
        for row, message_id in zip(rows, ids, strict=True):
            row.id = message_id

    async def update_messages(self, changes: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Many rows' new values by primary key: one executemany per set of columns changed."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for message_id, values in changes:
            params = {"_id": message_id, **{f"_{k}": v for k, v in values.items()}}
            groups.setdefault(tuple(sorted(values)), []).append(params)
        for keys, params_list in groups.items():
            statement = (
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("_id"))
                .values({key: bindparam(f"_{key}") for key in keys})
            )
            await self.session.execute(statement, params_list)
