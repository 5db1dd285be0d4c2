"""The cases a call rates, and writing its rating through the domain: shared by the flows."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog

from ivr.agi.protocol import ScriptRequest
from rating.cases.models import Evaluation
from rating.cases.registration import KINDS, ServiceRecord
from rating.cases.status import CaseStatus
from rating.errors import DomainError, InvalidInput
from rating.privacy import normalize_phone
from rating.ratings.requests import RatingOutcome, RatingRequest
from rating.text import unstorable

log = structlog.get_logger("pingjia.ivr")

T = TypeVar("T")
CASE_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
MAX_CASES = 20  # a batch (Taishan Art. 20) is a handful of cases, never hundreds


class Ratings(Protocol):
    """What the flows ask of the domain (RatingService, or a scripted fake in tests)."""

    async def case_status(
        self, record: ServiceRecord, *, actor: str, now: datetime
    ) -> CaseStatus: ...
    async def evaluation(self, case_no: str) -> Evaluation: ...
    async def rate(self, request: RatingRequest, *, actor: str, now: datetime) -> RatingOutcome: ...


class CaseContext(Protocol):
    """What checking a call's cases and writing its rating need of the flows' context
    (ivr.flows.base.IvrContext provides it)."""

    @property
    def ratings(self) -> Ratings: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def save_attempts(self) -> int: ...
    @property
    def save_backoff_s(self) -> float: ...


@dataclass(frozen=True)
class CallCases:
    """What the dialplan said about the call: its cases (empty: unknown), kind and agent."""

    case_nos: tuple[str, ...]
    kind: str
    agent_id: str | None


def requested_cases(request: ScriptRequest) -> CallCases:
    """Cases from `case=` (repeatable) or the first positional argument; bad ones are logged."""
    raw = request.query.get("case") or list(request.args[:1])
    found: list[str] = []
    for value in raw:
        if not value.isprintable():  # a line break or control character: not a case list
            log.warning("agi case value ignored", value=repr(value)[:80])
            continue
        # A case number never holds a blank: `+` and %20 decode to one, so split on it.
        for case_no in value.split():
            if not CASE_NO.match(case_no):
                log.warning("agi case number ignored", case_no=case_no[:80])
            elif case_no not in found:
                found.append(case_no)
    if len(found) > MAX_CASES:
        log.warning("agi batch cut", asked=len(found), kept=MAX_CASES)
        found = found[:MAX_CASES]
    kind = request.first("kind") or (request.args[1] if len(request.args) > 1 else "")
    if kind not in KINDS:
        kind = "consultation"
    agent = request.first("agent") or (request.args[2] if len(request.args) > 2 else None)
    if agent and unstorable(agent) is not None:  # %00 in the query: refused, the call goes on
        log.warning("agi agent value ignored", agent=repr(agent)[:80])
        agent = None
    return CallCases(tuple(found), kind, (agent or "")[:64] or None)


def caller_phone(env: dict[str, str]) -> str | None:
    """The caller's number when agi_callerid holds a valid one (else `unknown` or junk)."""
    try:
        return normalize_phone(env.get("agi_callerid", ""))
    except (InvalidInput, ValueError):
        return None


def case_nos_for(cases: CallCases, uniqueid: str) -> list[str]:
    """A call without a case still gets rated, against a case made from the call."""
    return list(cases.case_nos) or [f"IVR-{uniqueid}"[:64]]


async def _together(work: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Await all; one (the usual call: one case) without gather's task per awaitable."""
    if len(work) == 1:
        return [await work[0]]
    return list(await asyncio.gather(*work))


async def ensure_registered(
    ctx: CaseContext, case_nos: Sequence[str], cases: CallCases, env: dict[str, str]
) -> list[str]:
    """Register the cases the case system has not reported; the statuses of all of them."""
    phone, now = caller_phone(env), ctx.clock()
    records = [
        ServiceRecord(
            case_no=case_no,
            kind=cases.kind,
            phone=phone,
            completed_at=now,
            agent_id=cases.agent_id,
            source="ivr",
        )
        for case_no in case_nos
    ]
    # The statuses only (rating/cases/status.py): the rating's write reads the evaluations.
    found = await _together([ctx.ratings.case_status(r, actor="ivr", now=now) for r in records])
    for record, checked in zip(records, found, strict=True):
        if checked.created:
            log.info("case registered from the call", case_no=record.case_no)
    return [checked.status for checked in found]


async def check_cases(ctx: CaseContext, cases: CallCases, env: dict[str, str]) -> list[str] | None:
    """At call start: register unknown cases, return the statuses; None if the database failed
    (the write then registers them itself, with its retries)."""
    case_nos = case_nos_for(cases, env.get("agi_uniqueid", ""))
    try:  # no admission slot: the domain batches the checks of calls starting together
        return await ensure_registered(ctx, case_nos, cases, env)
    except Exception as exc:  # the database may be down: the call goes on, the write retries
        log.warning("cases not checked at call start", error=str(exc)[:200])
        return None


async def save_rating(
    ctx: CaseContext,
    env: dict[str, str],
    cases: CallCases,
    *,
    level: int,
    tags: Sequence[str],
    voice_ref: str | None,
    register: bool = True,
) -> list[RatingOutcome]:
    """Write one rating to every case of the call, retrying a database that is down."""
    case_nos = case_nos_for(cases, env.get("agi_uniqueid", ""))
    for attempt in range(1, ctx.save_attempts + 1):
        try:
            # No admission slot: the domain's group commit writes the cases and ratings of
            # every call that hangs up meanwhile in one transaction (rating/db/batching.py).
            if register or attempt > 1:
                await ensure_registered(ctx, case_nos, cases, env)
            outcomes = await _together(
                [_rate(ctx, env, case_no, level, tags, voice_ref) for case_no in case_nos]
            )
            for outcome in outcomes:
                log.info(
                    "ivr rating stored",
                    case_no=outcome.evaluation.case.case_no,
                    level=level,
                    adopted=outcome.adopted,
                    replayed=outcome.replayed,
                    ticket=outcome.ticket.ticket_no if outcome.ticket else None,
                )
            return outcomes
        except DomainError as exc:
            log.error("ivr rating refused by the domain", error=exc.message, level=level)
            return []
        except Exception as exc:  # the database may be restarting: try again, then report
            log.warning("ivr rating not stored yet", attempt=attempt, error=str(exc)[:200])
            if attempt < ctx.save_attempts:
                await asyncio.sleep(ctx.save_backoff_s * attempt)
    log.error(
        "ivr rating LOST after retries",
        cases=",".join(case_nos),
        level=level,
        tags=",".join(tags),
        voice_ref=voice_ref,
    )
    return []


async def _rate(
    ctx: CaseContext,
    env: dict[str, str],
    case_no: str,
    level: int,
    tags: Sequence[str],
    voice_ref: str | None,
) -> RatingOutcome:
    request = RatingRequest(
        case_no=case_no,
        level=level,
        channel="ivr",
        tags=list(tags),
        voice_ref=voice_ref,
        # Unique per evaluation, so one ref serves every case of a batch, and a retried call
        # (same agi_uniqueid) replays instead of rating twice.
        source_ref=f"agi:{env.get('agi_uniqueid', '')}",
        require_reason=False,
    )
    return await ctx.ratings.rate(request, actor="ivr", now=ctx.clock())
