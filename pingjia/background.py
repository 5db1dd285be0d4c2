"""The composition root's background half: the bridge's workers and the scheduler's sweeps.

Built from `Services` once per process (`pingjia serve`, `pingjia scheduler`); every sweep is a
callable `(now) -> items handled`, so the scheduler imports none of the parts it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

import structlog

from bridge.central import CentralStore
from bridge.outbox import OutboxWorker, worker_name
from bridge.ticket_system import TicketTransfer
from ivr.survey_sweep import OutboundSurveys
from pingjia.composition import Services
from scheduler.runner import Scheduler, Sweep
from scheduler.sweeps import DefaultRatings

OUTBOX_EVERY = timedelta(seconds=5)
TRANSFER_EVERY = timedelta(seconds=15)
SWEEP_EVERY = timedelta(minutes=1)
QUEUED_INBOX_EVERY = timedelta(seconds=1)  # PINGJIA_SMS_REPLIES=queued
ROLLUP_AT = {"hour": 1, "minute": 30}  # local time, after the day is over

log = structlog.get_logger("pingjia")


@dataclass
class Background:
    scheduler: Scheduler
    outbox: OutboxWorker | None = None
    transfer: TicketTransfer | None = None
    closers: list[CentralStore] = field(default_factory=list)

    async def close(self) -> None:
        self.scheduler.shutdown()
        if self.transfer is not None:
            await self.transfer.close()
        for closer in self.closers:
            await closer.close()


def sms_sweeps(services: Services) -> list[Sweep]:
    """Hook: the SMS part's sweeps (invitations, 24 h reminders, retries of failed sends,
    held notices such as night-time alerts, second-rating invitations)."""
    sms = services.sms
    inbox_every = QUEUED_INBOX_EVERY if sms.inbox.intake.queued else SWEEP_EVERY
    return [
        Sweep("sms_invitations", sms.send_due_invitations, every=SWEEP_EVERY),
        Sweep("sms_reminders", sms.send_due_reminders, every=SWEEP_EVERY),
        Sweep("sms_retries", sms.retry_failed, every=SWEEP_EVERY),
        Sweep("sms_notices", sms.release_notices, every=SWEEP_EVERY),
        # Queued replies wait for this sweep: it runs every second then, else once a minute
        # for replies whose handler died.
        Sweep("sms_inbox", sms.inbox.intake.resume_stale, every=inbox_every),
        Sweep("sms_second_invitations", sms.send_second_invitations, every=SWEEP_EVERY),
    ]


def ivr_sweeps(services: Services, owner: str) -> list[Sweep]:
    """Hook: outbound rating calls, when the profile rates by phone and AMI is configured."""
    profile = services.profile
    if not profile.ivr.outbound_survey:
        return []
    if services.calls.ami is None:
        log.warning(
            "outbound_surveys sweep not registered: the profile rates by phone "
            "([ivr] outbound_survey = true) but PINGJIA_AMI_URL is not set",
            profile=profile.name,
        )
        return []
    return [Sweep("outbound_surveys", OutboundSurveys(services.calls, owner), every=SWEEP_EVERY)]


async def _outbox_sweep(worker: OutboxWorker, now: datetime) -> int:
    return (await worker.drain(now, max_rounds=20)).handled


async def _rollup(services: Services, owner: str, now: datetime) -> int:
    return await services.stats.rollup(now, owner=owner)


def build_background(services: Services) -> Background:
    """The bridge's workers and every sweep, as this process's settings ask."""
    settings = services.settings
    owner = worker_name()
    # PINGJIA_LEASE_S: one lease for every claim a node makes, else each keeps its own.
    lease = None if settings.lease_s is None else timedelta(seconds=settings.lease_s)
    defaults = DefaultRatings(
        services.sessions, services.ratings, owner, lease=lease or DefaultRatings.lease
    )
    sweeps = [
        Sweep("default_ratings", defaults, every=SWEEP_EVERY),
        Sweep("deadline_alerts", services.alerts.sweep_deadlines, every=SWEEP_EVERY),
        Sweep("stats_rollup", partial(_rollup, services, owner), cron=ROLLUP_AT),
        *sms_sweeps(services),
        *ivr_sweeps(services, owner),
    ]
    outbox = transfer = None
    closers: list[CentralStore] = []
    if settings.central_store_url:
        store = CentralStore(settings.central_store_url)
        closers.append(store)
        outbox = OutboxWorker(
            services.sessions,
            store,
            services.clock,
            dead_letter=services.alerts.dead_letter,
            lease=lease or OutboxWorker.lease,
        )
        sweeps.append(Sweep("outbox", partial(_outbox_sweep, outbox), every=OUTBOX_EVERY))
    if settings.ticket_system_url:
        transfer = TicketTransfer(
            services.sessions,
            services.profile,
            settings.ticket_system_url,
            settings.public_url,
            services.clock,
            dead_letter=services.alerts.transfer_dead,
            lease=lease or TicketTransfer.lease,
        )
        sweeps.append(Sweep("ticket_transfer", transfer, every=TRANSFER_EVERY))
    if settings.sweep_every_s is not None:
        every = timedelta(seconds=settings.sweep_every_s)
        sweeps = [replace(s, every=every) if s.cron is None else s for s in sweeps]
    scheduler = Scheduler(sweeps, services.clock, services.profile.tz)
    return Background(scheduler, outbox, transfer, closers)
