"""Completed cases registered in batches: one transaction for the cases that arrive together.

`RatingService.register` queues each case on a group commit (rating/db/batching.py), as ratings
are: a burst of calls starting at once (each checks its case) or of case-system reports shares
one lookup and one insert. The rules are those of one case at a time: a case number already
registered answers its evaluation (`created` False), in the database or earlier in the batch.
Should the insert hit the unique case number of a case registered meanwhile outside the batch,
the batch is rolled back and each case is registered alone, so only that one answers the winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.access.audit import AuditLog
from rating.cases.models import Case, Evaluation
from rating.cases.repository import Repository
from rating.db.batching import split_on_conflict
from rating.errors import InvalidInput
from rating.policy.profile import Profile
from rating.policy.rules import due_times
from rating.privacy import PhoneVault, mask_phone, normalize_phone

KINDS = ("consultation", "complaint")
# How far the case system's clock may run ahead of ours; beyond it a completion is refused.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ServiceRecord:
    """A completed 12345 case as the case system reports it."""

    case_no: str
    kind: str
    phone: str | None
    completed_at: datetime
    agency: str | None = None
    agent_id: str | None = None
    matter: str | None = None
    source: str = "api"


class CaseStore(Protocol):
    """What registration writes with (RatingService has it): the sessions, the profile that
    sets an evaluation's due times, the vault that encrypts its phone number."""

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def profile(self) -> Profile: ...

    @property
    def vault(self) -> PhoneVault: ...


Registered = tuple[Evaluation, bool]  # the evaluation, and whether this request created it


@dataclass(frozen=True)
class Registration:
    """One checked case report waiting for its batch (phone already normalized)."""

    record: ServiceRecord
    phone: str | None
    actor: str
    now: datetime


def registration(record: ServiceRecord, actor: str, now: datetime) -> Registration:
    """A case report checked (InvalidInput at once), its phone normalized, for a batch."""
    if record.kind not in KINDS:
        raise InvalidInput(
            f"kind must be one of {', '.join(KINDS)}",
            code="invalid_kind",
            params={"allowed": KINDS},
        )
    if record.completed_at.tzinfo is None:
        raise InvalidInput("completed_at must carry a UTC offset", code="naive_timestamp")
    if record.completed_at > now + CLOCK_SKEW:
        # A future completion would invite the citizen to rate a case not yet done.
        raise InvalidInput(
            f"completed_at {record.completed_at.isoformat()} is in the future (server time "
            f"{now.astimezone(UTC).isoformat()}, {CLOCK_SKEW.seconds // 60} minutes allowed)",
            code="completed_in_future",
            params={
                "completed_at": record.completed_at.isoformat(),
                "now": now.astimezone(record.completed_at.tzinfo).isoformat(timespec="seconds"),
                "minutes": CLOCK_SKEW.seconds // 60,
            },
        )
    phone = normalize_phone(record.phone) if record.phone else None
    return Registration(record, phone, actor, now)


async def register_cases(
    store: CaseStore, items: Sequence[Registration]
) -> list[Registered | Exception]:
    """Register a batch; one (evaluation, created) per item, in order."""

    async def winner(one: Registration) -> Registered | Exception:
        # Another request registered the same case_no first: answer with that one.
        case_no = one.record.case_no
        async with store.sessions() as session:
            found = await Repository(session).evaluation_by_case_no(case_no)
        if found is None:
            return RuntimeError(f"case {case_no} conflicted but cannot be read back")
        return found, False

    return await split_on_conflict(items, lambda batch: _register(store, batch), winner)


async def _register(
    store: CaseStore, items: Sequence[Registration]
) -> list[Registered | Exception]:
    """Rows for the cases not known yet; the known ones answered as they are."""
    results: list[Registered] = []
    async with store.sessions() as session:
        repo, audit = Repository(session), AuditLog(session)
        known = await repo.evaluations_by_case_nos(list({i.record.case_no for i in items}))
        for item in items:
            existing = known.get(item.record.case_no)
            if existing is not None:
                results.append((existing, False))
                continue
            evaluation = new_evaluation(store, item)
            known[item.record.case_no] = evaluation
            repo.add(evaluation.case, evaluation)
            audit.record(
                item.now,
                item.actor,
                "case.registered",
                "case",
                item.record.case_no,
                kind=item.record.kind,
            )
            results.append((evaluation, True))
        if any(created for _, created in results):
            await session.commit()
    return list(results)


def new_evaluation(store: CaseStore, item: Registration) -> Evaluation:
    """A case and its pending evaluation, due times from the profile."""
    record, phone, vault = item.record, item.phone, store.vault
    completed_at = record.completed_at.astimezone(UTC)  # as the database gives it back
    due = due_times(store.profile, completed_at)
    case = Case(
        case_no=record.case_no,
        kind=record.kind,
        phone_enc=vault.encrypt(phone) if phone else None,
        phone_hash=vault.lookup_hash(phone) if phone else None,
        phone_masked=mask_phone(phone) if phone else None,
        agency=record.agency,
        agent_id=record.agent_id,
        matter=record.matter,
        source=record.source,
        completed_at=completed_at,
        created_at=item.now,
    )
    return Evaluation(
        case=case,
        status="pending",
        profile=store.profile.name,
        default_due_at=due.default_due_at,
        reminder_due_at=due.reminder_due_at,
        created_at=item.now,
        updated_at=item.now,
        ratings=[],
    )
