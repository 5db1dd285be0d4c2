"""`pingjia outbox dead` and `pingjia outbox retry`, through the command's `main`, on both
databases: items dead-lettered by the real outbox worker and transfer sweep against a fake
central store and a fake 12345 system that fail every try, then listed, re-armed and sent.

Bad inputs tried: an unknown outbox id, an id still pending (being tried), an id already
sent, an id dead-lettered and then acknowledged by a late worker (sent meanwhile: not
re-armed), a ticket number that does not exist, a ticket still waiting for its transfer, no
selector at all, `--all` beside `--id`, `--limit 0`, `--all` when nothing is dead (exit 0,
one line), and an item that dies a second time after a re-arm (a second alert).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.backoff import Backoff
from bridge.central import CentralStore
from bridge.outbox import OutboxWorker
from bridge.ticket_system import TicketTransfer
from pingjia.cli import main
from pingjia.composition import Services
from rating.access.models import AuditEntry
from rating.cases.registration import ServiceRecord
from rating.outbox.models import OutboxItem
from rating.outbox.repository import OutboxRepository
from rating.ratings.requests import RatingRequest
from rating.tickets.models import Alert, Ticket
from tests.fakes.central_store import FakeCentralStore
from tests.fakes.clock import FakeClock
from tests.fakes.ticket_system import FakeTicketSystem

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the taishan profile's time zone


@pytest.fixture
async def store() -> AsyncIterator[FakeCentralStore]:
    fake = FakeCentralStore()
    await fake.start()
    fake.script("/ratings", 503, {"error": "down"}, times=None)  # down until told otherwise
    yield fake
    await fake.stop()


@pytest.fixture
async def system() -> AsyncIterator[FakeTicketSystem]:
    fake = FakeTicketSystem()
    await fake.start()
    fake.script("/tickets", 503, {"error": "maintenance"}, times=None)
    yield fake
    await fake.stop()


@pytest.fixture
async def worker(
    services: Services, store: FakeCentralStore, clock: FakeClock
) -> AsyncIterator[OutboxWorker]:
    """The outbox worker as `pingjia serve` builds it (8 tries), with a quicker backoff."""
    run = OutboxWorker(
        services.sessions,
        CentralStore(store.url, timeout=2),
        clock,
        dead_letter=services.alerts.dead_letter,
        backoff=Backoff(base=10, cap=600, rng=random.Random(7)),
    )
    yield run
    await run.sender.close()  # type: ignore[attr-defined]


@pytest.fixture
async def transfer(
    services: Services, system: FakeTicketSystem, clock: FakeClock
) -> AsyncIterator[TicketTransfer]:
    sweep = TicketTransfer(
        services.sessions,
        services.profile,
        system.url,
        "https://pingjia.example",
        clock,
        dead_letter=services.alerts.transfer_dead,
        backoff=Backoff(base=10, rng=random.Random(3)),
    )
    yield sweep
    await sweep.close()


@pytest.fixture(autouse=True)
def cli_env(services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pingjia` as an operator runs it against the same database."""
    for name, value in {
        "PINGJIA_DATABASE_URL": services.settings.database_url,
        "PINGJIA_DATA_DIR": str(tmp_path),
        "PINGJIA_SECRET_KEY": "test-secret-key",
        "PINGJIA_PROFILE": "taishan",
        "PINGJIA_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PINGJIA_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`pingjia outbox ARGS…`: its own event loop, as from a shell."""
    capsys.readouterr()  # not the workers' log lines before it
    code = await asyncio.to_thread(main, ["outbox", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def rated(services: Services, case_no: str, level: int = 1) -> str | None:
    """A rated case: an outbox row for the store and, at level 4-5, a ticket (its number)."""
    now = services.clock()
    await services.ratings.register(
        ServiceRecord(case_no, "complaint", "13812345678", now - timedelta(hours=1), "某局"),
        actor="t",
        now=now,
    )
    outcome = await services.ratings.rate(
        RatingRequest(case_no, level, "ivr", tags=["staff_hostile"] if level == 5 else None),
        actor="t",
        now=now,
    )
    return outcome.ticket.ticket_no if outcome.ticket is not None else None


async def fail_out(worker: OutboxWorker, clock: FakeClock) -> None:
    """Every try the worker gives an item, 15 minutes apart (past any backoff)."""
    for _ in range(worker.max_attempts):
        await worker.run_once()
        clock.advance(minutes=15)


async def fail_transfers(transfer: TicketTransfer, clock: FakeClock) -> None:
    for _ in range(transfer.max_attempts):
        assert await transfer(clock()) == 0
        clock.advance(hours=1)


def catch_up(clock: FakeClock) -> None:
    """A re-arm makes items due at the wall clock's now; move the fake clock past it."""
    clock.now = max(clock.now, datetime.now(UTC)) + timedelta(seconds=1)


async def outbox(services: Services) -> dict[str, OutboxItem]:
    """Outbox rows by case number."""
    async with services.sessions() as session:
        rows = (await session.execute(select(OutboxItem).order_by(OutboxItem.id))).scalars()
        return {row.payload["case_no"]: row for row in rows}


async def ticket(services: Services, ticket_no: str) -> Ticket:
    async with services.sessions() as session:
        found = await session.scalar(select(Ticket).where(Ticket.ticket_no == ticket_no))
        assert found is not None
        return found


async def dead_alerts(services: Services) -> list[Alert]:
    async with services.sessions() as session:
        query = select(Alert).where(Alert.kind == "dead_letter").order_by(Alert.id)
        return list((await session.execute(query)).scalars())


async def test_dead_letters_are_listed_then_retried_by_id_and_ticket_and_sent(
    services: Services,
    store: FakeCentralStore,
    system: FakeTicketSystem,
    worker: OutboxWorker,
    transfer: TicketTransfer,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    no = await rated(services, "C1", level=5)
    assert no is not None
    await fail_transfers(transfer, clock)  # the transfer dies first,
    await fail_out(worker, clock)  # the rating's post after it
    row = (await outbox(services))["C1"]
    assert (row.attempts, row.sent_at) == (8, None) and row.dead_at is not None
    assert len(store.to("/ratings")) == 8 and len(system.to("/tickets")) == 8

    code, out, err = await cli(capsys, "dead")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "2 dead-lettered (1 outbox, 1 ticket transfer), newest first"
    assert "DEAD AT (Asia/Shanghai)" in lines[1]
    first, second = lines[2].split(), lines[3].split()
    assert first[:5] == ["outbox", str(row.id), "central.rating", row.idempotency_key, "8"]
    assert second[:5] == ["ticket", no, "12345.transfer", f"ticket-{no}", "8"]
    local = row.dead_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert local in lines[2] and "503" in lines[2] and "tickets answered 503" in lines[3]
    assert "已停止重试" not in lines[3]  # the error alone, not the alert's sentence
    assert lines[-1].startswith("re-arm with: pingjia outbox retry")

    code, out, err = await cli(capsys, "retry", "--id", str(row.id))
    assert (code, err) == (0, "")
    assert out.startswith(f"re-armed 1 (1 outbox, 0 ticket transfer): outbox {row.id}\n")
    rearmed = (await outbox(services))["C1"]
    assert (rearmed.dead_at, rearmed.attempts, rearmed.sent_at) == (None, 0, None)
    assert "503" in (rearmed.last_error or "")  # kept until the next try says otherwise
    assert abs(rearmed.next_attempt_at - datetime.now(UTC)) < timedelta(minutes=1)
    async with services.sessions() as session:
        [audit] = (
            await session.execute(select(AuditEntry).where(AuditEntry.actor == "cli"))
        ).scalars()
    assert (audit.action, audit.entity, audit.entity_id) == (
        "outbox.rearmed",
        "outbox",
        str(row.id),
    )
    assert audit.data["key"] == row.idempotency_key and "503" in audit.data["last_error"]

    code, out, _ = await cli(capsys, "dead")
    assert out.splitlines()[0].startswith("1 dead-lettered (0 outbox, 1 ticket transfer)")

    store.scripts.clear()  # the store is back
    catch_up(clock)
    assert (await worker.run_once()).sent == 1
    sent = (await outbox(services))["C1"]
    assert sent.sent_at is not None and sent.last_error is None
    assert store.stored[row.idempotency_key]["payload"]["case_no"] == "C1"

    code, out, err = await cli(capsys, "retry", "--ticket", no)
    assert (code, err) == (0, "") and f"ticket {no}" in out
    system.scripts.clear()
    catch_up(clock)
    assert await transfer(clock()) == 1
    moved = await ticket(services, no)
    assert moved.transferred_at is not None and moved.transfer_ref == "GD-000001"

    code, out, _ = await cli(capsys, "dead")
    assert (code, out) == (0, _EMPTY)


_EMPTY = "no dead-lettered items: every outbox row and ticket transfer is sent or in retry\n"


async def test_retry_all_and_a_second_death_raises_a_second_alert(
    services: Services,
    store: FakeCentralStore,
    system: FakeTicketSystem,
    worker: OutboxWorker,
    transfer: TicketTransfer,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await rated(services, "C1")
    no = await rated(services, "C2", level=5)
    assert no is not None
    await fail_out(worker, clock)
    await fail_transfers(transfer, clock)
    assert len(await dead_alerts(services)) == 3

    code, out, _ = await cli(capsys, "dead", "--limit", "1")
    lines = out.splitlines()
    assert lines[0].startswith("3 dead-lettered (2 outbox, 1 ticket transfer)")
    assert lines[2].startswith(f"ticket  {no}")  # the newest death
    assert "showing the 1 newest of 3: --limit N shows more" in out

    code, out, err = await cli(capsys, "retry", "--all")
    assert (code, err) == (0, "")
    assert out.startswith("re-armed 3 (2 outbox, 1 ticket transfer): ")
    code, out, _ = await cli(capsys, "dead")
    assert out == _EMPTY

    # Still down: each item dies again, and the console hears it again.
    catch_up(clock)
    await fail_out(worker, clock)
    await fail_transfers(transfer, clock)
    alerts = await dead_alerts(services)
    assert len(alerts) == 6
    assert sum(a.ticket_no == no for a in alerts) == 2
    code, out, _ = await cli(capsys, "dead")
    newest = max(a.created_at for a in alerts if a.ticket_no == no)
    assert newest.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") in out

    code, out, _ = await cli(capsys, "retry", "--all")
    assert out.startswith("re-armed 3 ")
    store.scripts.clear()
    system.scripts.clear()
    catch_up(clock)
    assert (await worker.drain()).sent == 2
    assert await transfer(clock()) == 1
    assert all(row.sent_at is not None for row in (await outbox(services)).values())

    code, out, err = await cli(capsys, "retry", "--all")
    assert (code, out, err) == (0, "no dead-lettered items: nothing to re-arm\n", "")
    async with services.sessions() as session:
        audits = (
            await session.execute(select(AuditEntry.action).where(AuditEntry.actor == "cli"))
        ).scalars()
        assert sorted(audits) == ["outbox.rearmed"] * 4 + ["ticket.transfer_rearmed"] * 2


async def test_bad_selectors_are_named_and_left_as_they_are(
    services: Services,
    store: FakeCentralStore,
    worker: OutboxWorker,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await rated(services, "DEAD")
    await rated(services, "LATE")
    await fail_out(worker, clock)
    store.scripts.clear()
    await rated(services, "SENT")
    assert (await worker.run_once()).sent == 1
    waiting_ticket = await rated(services, "PENDING", level=5)  # its row and ticket never tried
    rows = await outbox(services)
    # A worker whose lease ran out acknowledges LATE after it was dead-lettered: sent meanwhile.
    async with services.sessions() as session:
        await OutboxRepository(session).acknowledge([rows["LATE"].id], clock())
        await session.commit()
    before = await outbox(services)

    code, out, err = await cli(capsys, "dead")
    assert out.splitlines()[0].startswith("1 dead-lettered (1 outbox, 0 ticket transfer)")

    ids = [rows[c].id for c in ("DEAD", "LATE", "SENT", "PENDING")]
    named = [a for i in [*ids, 9999] for a in ("--id", str(i))]
    code, out, err = await cli(
        capsys, "retry", *named, "--ticket", "NOPE", "--ticket", waiting_ticket or ""
    )
    assert code == 1
    assert out.startswith(f"re-armed 1 (1 outbox, 0 ticket transfer): outbox {ids[0]}\n")
    assert err.splitlines() == [
        f"not re-armed: outbox {ids[1]}: not dead-lettered: already sent",
        f"not re-armed: outbox {ids[2]}: not dead-lettered: already sent",
        f"not re-armed: outbox {ids[3]}: not dead-lettered: still being tried",
        "not re-armed: outbox 9999: not found",
        "not re-armed: ticket NOPE: not found",
        f"not re-armed: ticket {waiting_ticket}: not dead-lettered: still being tried",
    ]
    after = await outbox(services)
    assert after["DEAD"].dead_at is None and after["DEAD"].attempts == 0
    for case_no in ("LATE", "SENT", "PENDING"):
        old, new = before[case_no], after[case_no]
        assert (new.dead_at, new.sent_at, new.attempts, new.next_attempt_at) == (
            old.dead_at,
            old.sent_at,
            old.attempts,
            old.next_attempt_at,
        )
    assert (await ticket(services, waiting_ticket or "")).transfer_attempts == 0

    for bad, says in [
        (["retry"], "--all alone"),
        (["retry", "--all", "--id", "1"], "--all alone"),
        (["dead", "--limit", "0"], "must be at least 1"),
        (["retry", "--id", "x"], "invalid int value"),
    ]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stopped:
            main(["outbox", *bad])  # argparse stops before any event loop
        assert stopped.value.code == 2
        assert says in capsys.readouterr().err
