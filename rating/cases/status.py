"""The start-of-call case check, in batches: each case's status, registering those not known.

A call checks its cases while the greeting plays (ivr/flows/cases.py): it needs only their
statuses, to say "already rated" before the menus. `RatingService.register` answers whole
evaluations (case, ratings) as ORM objects, which the rating's write reads again anyway; under
a burst that load was the IVR's largest cost after the write (bench/ivr_bench.py). Here the
known cases are one Core SELECT of (case_no, status) for the batch, and only the unknown ones
go through registration (rating/cases/registration.py), with its rules and its audit line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from rating.cases.models import Case, Evaluation
from rating.cases.registration import CaseStore, Registration, register_cases
from rating.db.bulk_sql import matching


@dataclass(frozen=True)
class CaseStatus:
    """A case's evaluation status, and whether this check registered the case."""

    status: str
    created: bool


async def case_statuses(
    store: CaseStore, items: Sequence[Registration]
) -> list[CaseStatus | Exception]:
    """One status per item, in order; an item whose registration failed answers its error."""
    case_nos = list({item.record.case_no for item in items})
    async with store.sessions() as session:
        dialect = session.get_bind().dialect
        rows = await session.execute(
            select(Case.case_no, Evaluation.status)
            .join(Evaluation, Evaluation.case_id == Case.id)
            .where(matching(Case.case_no, case_nos, dialect))  # one SQL text for any batch
        )
        known: dict[str, CaseStatus] = {no: CaseStatus(s, False) for no, s in rows.all()}
    missing = [item for item in items if item.record.case_no not in known]
    registered: dict[int, CaseStatus | Exception] = {}
    if missing:
        # The same case twice in `missing` is registered once: registration answers the
        # second from the first (created False), as it does for any batch.
        answers = await register_cases(store, missing)
        for item, answer in zip(missing, answers, strict=True):
            registered[id(item)] = (
                answer if isinstance(answer, Exception) else CaseStatus(answer[0].status, answer[1])
            )
    return [known.get(item.record.case_no) or registered[id(item)] for item in items]
