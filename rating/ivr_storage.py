"""Queries of the IVR part: outbound calls (AMI Originate) and their outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import contains_eager

from rating.ivr_models import OutboundCall
from rating.models import Case
from rating.storage import SessionRepository


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
