"""Queries of the IVR part: outbound calls (AMI Originate), their outcomes, and the cases the
`outbound_surveys` sweep is due to call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.orm import contains_eager

from ivr.models import OutboundCall
from rating.cases.models import Case, Evaluation
from rating.consent.repository import opted_out_clause
from rating.db.records import SessionRepository
from rating.sweeps.claims import ClaimRepository, leased

SURVEY_SWEEP = "outbound_survey"


@dataclass(frozen=True)
class SurveyRule:
    """Which pending cases the sweep calls (the profile's [ivr] survey settings)."""

    delay: timedelta  # after the case was completed and registered
    tries: int  # survey calls per case at most
    retry_after: timedelta  # since the case's last survey call


def due_surveys_query(now: datetime, rule: SurveyRule, limit: int) -> Select[int, str]:
    """Pending evaluations with a number whose case is due a survey call, oldest case first,
    locked FOR UPDATE SKIP LOCKED (SQLite ignores it) and not leased by another process."""
    surveys = (OutboundCall.case_id == Case.id, OutboundCall.kind == "survey")
    tried = select(func.count(OutboundCall.id)).where(*surveys).scalar_subquery()
    recent = exists().where(*surveys, OutboundCall.requested_at > now - rule.retry_after)
    opted_out = opted_out_clause(Case.phone_hash)
    claimed = leased(SURVEY_SWEEP, now)
    return (
        select(Evaluation.id, Case.case_no)
        .join(Case, Case.id == Evaluation.case_id)
        .where(
            Evaluation.status == "pending",
            Evaluation.default_due_at > now,  # the default rating's sweep has it now
            Case.phone_enc.is_not(None),
            Case.completed_at <= now - rule.delay,
            Case.created_at <= now - rule.delay,  # a late registration's SMS goes first too
            tried < rule.tries,
            ~recent,
            ~opted_out,
            ~claimed,
        )
        .order_by(Case.completed_at, Evaluation.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Evaluation)
    )


class CallRepository(SessionRepository):
    """Named queries over one session; the caller owns the transaction."""

    def add(self, call: OutboundCall) -> None:
        self.session.add(call)

    async def for_case(self, case_no: str, limit: int) -> Sequence[OutboundCall]:
        """The calls of one case, newest first."""
        result = await self.session.execute(
            select(OutboundCall)
            .join(OutboundCall.case)
            .options(contains_eager(OutboundCall.case))
            .where(Case.case_no == case_no)
            .order_by(OutboundCall.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def by_action_id(self, action_id: str) -> OutboundCall | None:
        result = await self.session.execute(
            select(OutboundCall)
            .join(OutboundCall.case)
            .options(contains_eager(OutboundCall.case))
            .where(OutboundCall.action_id == action_id)
        )
        return result.scalar_one_or_none()

    async def set_status(
        self,
        action_id: str,
        status: str,
        now: datetime,
        *,
        reason: str | None = None,
        uniqueid: str | None = None,
        unless: Sequence[str] = (),
    ) -> bool:
        """Move a call to `status` (not when it already is in one of `unless`); True if moved."""
        values: dict[str, object] = {"status": status, "updated_at": now}
        if reason is not None:
            values["reason"] = reason
        if uniqueid is not None:
            values["channel_uniqueid"] = uniqueid
        query = update(OutboundCall).where(OutboundCall.action_id == action_id)
        if unless:
            query = query.where(OutboundCall.status.not_in(list(unless)))
        result = await self.session.execute(
            query.values(**values).execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def in_flight(
        self, case_id: int, since: datetime, states: Sequence[str]
    ) -> OutboundCall | None:
        """The newest call of a case still in one of `states`, requested after `since`."""
        result = await self.session.execute(
            select(OutboundCall)
            .where(
                OutboundCall.case_id == case_id,
                OutboundCall.status.in_(list(states)),
                OutboundCall.requested_at > since,
            )
            .order_by(OutboundCall.id.desc())
            .limit(1)
        )
        return result.scalars().first()

    async def set_dial_status(self, action_id: str, dial_status: str, now: datetime) -> bool:
        """Record a call-back's dial result once (every process hears the event); True if set."""
        result = await self.session.execute(
            update(OutboundCall)
            .where(OutboundCall.action_id == action_id, OutboundCall.dial_status.is_(None))
            .values(dial_status=dial_status, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def claim_due_surveys(
        self, now: datetime, rule: SurveyRule, owner: str, lease_until: datetime, limit: int
    ) -> list[tuple[int, str]]:
        """(evaluation id, case number) of the cases due a survey call, leased to `owner` in
        `sweep_claims` so another process skips them until the calls are recorded."""
        rows = (await self.session.execute(due_surveys_query(now, rule, limit))).all()
        case_of = {int(row[0]): str(row[1]) for row in rows}
        won = await ClaimRepository(self.session).lease(
            SURVEY_SWEEP, list(case_of), now, owner, lease_until
        )
        leased = set(won)
        return [(i, case_no) for i, case_no in case_of.items() if i in leased]  # oldest first

    async def release_surveys(self, evaluation_ids: Sequence[int]) -> None:
        await ClaimRepository(self.session).release(SURVEY_SWEEP, evaluation_ids)
