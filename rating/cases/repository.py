"""The queries of a case's evaluation and its ratings: read by case number, adopt, replay."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Integer, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from rating.cases.models import Case, Evaluation, Rating
from rating.db.bulk_sql import matching, unindexed
from rating.db.records import SessionRepository, plain_record, read_plan, table_of

T = TypeVar("T")


class Repository(SessionRepository):
    """The queries of a case's evaluation and its ratings."""

    async def case_by_no(self, case_no: str) -> Case | None:
        result = await self.session.execute(
            select(Case)
            .where(Case.case_no == case_no)
            .options(selectinload(Case.evaluation).selectinload(Evaluation.ratings))
        )
        return result.scalar_one_or_none()

    async def agency_named(self, agency: str) -> bool:
        """Whether any case names this agency (an agency token for another is likely a typo)."""
        found = await self.session.execute(select(Case.id).where(Case.agency == agency).limit(1))
        return found.first() is not None

    async def evaluation_by_case_no(self, case_no: str) -> Evaluation | None:
        return (await self.evaluations_by_case_nos([case_no])).get(case_no)

    async def evaluations_by_case_nos(self, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        """The evaluations of these cases, with their cases and ratings, by case number."""
        # One statement: the ratings joined in (most evaluations have none or one), not a
        # second SELECT as selectinload would send.
        result = await self.session.execute(
            select(Evaluation)
            .join(Evaluation.case)
            .where(Case.case_no.in_(list(case_nos)))
            .options(contains_eager(Evaluation.case), joinedload(Evaluation.ratings))
        )
        return {e.case.case_no: e for e in result.unique().scalars()}

    async def evaluation_records(self, case_nos: Sequence[str]) -> dict[str, Evaluation]:
        """The evaluations of these cases with their cases and ratings, by case number, as
        plain records (rating.storage.new_record) outside the session: for a batch's write,
        which reads them and sets what it wrote (rating/ratings/writer.py).

        One Core statement with one parameter for the list (rating/db/bulk_sql.py): the ORM's
        loading of three objects per row was a fifth of a burst's write."""
        evaluations, cases, ratings = (table_of(m) for m in (Evaluation, Case, Rating))
        plans = [read_plan(Case), read_plan(Evaluation), read_plan(Rating)]
        dialect = self.session.get_bind().dialect
        query = (
            select(*(column for plan in plans for column in plan[1]))
            .select_from(
                evaluations.join(cases, cases.c.id == evaluations.c.case_id).outerjoin(
                    ratings, ratings.c.evaluation_id == evaluations.c.id
                )
            )
            .where(matching(cases.c.case_no, list(case_nos), dialect))
            .order_by(evaluations.c.id, ratings.c.id)
        )
        found: dict[str, Evaluation] = {}
        by_id: dict[int, Evaluation] = {}
        n_case, n_eval = len(plans[0][1]), len(plans[1][1])
        for row in await self.session.execute(query):
            evaluation = by_id.get(row[n_case])
            if evaluation is None:
                case = plain_record(Case, plans[0], row[:n_case])
                evaluation = plain_record(Evaluation, plans[1], row[n_case : n_case + n_eval])
                evaluation.__dict__.update(case=case, ratings=[])
                case.__dict__["evaluation"] = evaluation
                by_id[evaluation.id] = found[case.case_no] = evaluation
            if row[n_case + n_eval] is not None:  # a rating (outer join)
                rating = plain_record(Rating, plans[2], row[n_case + n_eval :])
                evaluation.ratings.append(rating)
        return found

    async def evaluations(self, case_no: str | None, limit: int) -> Sequence[Evaluation]:
        query = (
            select(Evaluation)
            .join(Case)
            .options(selectinload(Evaluation.case), selectinload(Evaluation.ratings))
            .order_by(Evaluation.id.desc())
            .limit(limit)
        )
        if case_no is not None:
            query = query.where(Case.case_no == case_no)
        return (await self.session.execute(query)).scalars().all()

    async def rating_by_source(self, evaluation_id: int, source_ref: str) -> Rating | None:
        result = await self.session.execute(
            select(Rating).where(
                Rating.evaluation_id == evaluation_id, Rating.source_ref == source_ref
            )
        )
        return result.scalar_one_or_none()

    async def adopt_many(self, pairs: Sequence[tuple[int, int]], status: str) -> set[int]:
        """Compare-and-set for each evaluation in one statement: an evaluation still pending
        takes its rating; `pairs` are (evaluation id, rating id), one per evaluation at most.
        The ids of the evaluations that did. The ratings' own `adopted` is the caller's
        (rating/ratings/writer.py writes it with the rating).

        The statement starts from the pairs and finds each evaluation by primary key. Found
        through the rating's row instead, SQLite's planner started from the status index and
        read every pending evaluation for each batch (134 ms a batch with 8,000 pending: the
        costs grew with the backlog, not with the batch)."""
        if not pairs:
            return set()
        table = table_of(Evaluation)
        dialect = self.session.get_bind().dialect
        given: Any
        if dialect.name == "postgresql":
            given = (
                func.unnest(
                    bindparam(None, [e for e, _ in pairs], type_=ARRAY(Integer)),
                    bindparam(None, [r for _, r in pairs], type_=ARRAY(Integer)),
                )
                .table_valued("evaluation_id", "rating_id")
                .render_derived(name="given")
            )
            evaluation_id, rating_id = given.c.evaluation_id, given.c.rating_id
            pending = table.c.status == "pending"
        else:
            given = func.json_each(bindparam(None, json.dumps(pairs))).table_valued(
                "value", name="given"
            )
            evaluation_id = func.json_extract(given.c.value, "$[0]")
            rating_id = func.json_extract(given.c.value, "$[1]")
            pending = unindexed(table.c.status) == "pending"  # found by id, not by status
        result = await self.session.execute(
            update(table)
            .where(table.c.id == evaluation_id, pending)
            .values(status=status, adopted_rating_id=rating_id)
            .returning(table.c.id)
        )
        return set(result.scalars().all())

    async def unadopt(self, rating_ids: Sequence[int]) -> None:
        """Ratings written as adopted whose evaluation took another one meanwhile."""
        dialect = self.session.get_bind().dialect
        await self.session.execute(
            update(Rating)
            .where(matching(Rating.id, list(rating_ids), dialect))
            .values(adopted=False)
            .execution_options(synchronize_session=False)
        )

    async def add_reason(self, rating_id: int, reason: str | None, tags: list[str]) -> bool:
        """A reason sent after the rating, onto the rating if it has none; whether it took."""
        values: dict[str, Any] = {"reason": reason}
        if tags:
            values["tags"] = tags
        result = await self.session.execute(
            update(Rating).where(Rating.id == rating_id, Rating.reason.is_(None)).values(**values)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
