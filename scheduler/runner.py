"""APScheduler 3.x's AsyncIOScheduler, used only as a trigger.

APScheduler 3 cannot share a job store between processes, so no state lives in it: every
process triggers every sweep on its own interval, and the sweeps claim their rows in the
database (`FOR UPDATE SKIP LOCKED`, leases), so any number of processes can run them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

log = structlog.get_logger("pingjia.scheduler")
SweepFn = Callable[[datetime], Awaitable[int]]


@dataclass(frozen=True)
class Sweep:
    """One idempotent sweep: `run(now)` handles what is due and returns how many items."""

    name: str
    run: SweepFn
    every: timedelta | None = None
    cron: dict[str, int] | None = None  # local time, e.g. {"hour": 1, "minute": 30}

    def trigger(self, tz: ZoneInfo) -> IntervalTrigger | CronTrigger:
        if self.cron is not None:
            return CronTrigger(timezone=tz, **self.cron)
        return IntervalTrigger(
            seconds=(self.every or timedelta(minutes=1)).total_seconds(), timezone=tz
        )


class SkippedWhileRunning(logging.Filter):
    """APScheduler warns each time a trigger finds its sweep still running. With
    `max_instances=1` that is the design (a sweep draining a backlog outlasts its interval:
    the sms_inbox sweep runs every second), so those lines are counted here, not logged."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances reached" in str(record.msg):
            self.skipped += 1
            return False
        return True


@dataclass
class Scheduler:
    """Runs the sweeps it is given; the composition root decides which."""

    sweeps: Sequence[Sweep]
    clock: Callable[[], datetime]
    timezone: ZoneInfo
    runs: dict[str, int] = field(default_factory=dict)  # name → items handled, for /metrics
    overlaps: SkippedWhileRunning = field(default_factory=SkippedWhileRunning)
    _aps: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Start inside the running loop (APScheduler binds to the loop it starts in)."""
        loop = asyncio.get_running_loop()
        self._aps = AsyncIOScheduler(event_loop=loop, timezone=self.timezone)
        for sweep in self.sweeps:
            self._aps.add_job(
                self.run,
                sweep.trigger(self.timezone),
                args=[sweep.name],
                id=sweep.name,
                name=sweep.name,
                max_instances=1,  # a slow sweep is not started again over itself
                coalesce=True,
                misfire_grace_time=None,
            )
        logging.getLogger("apscheduler.scheduler").addFilter(self.overlaps)
        self._aps.start()
        log.info("scheduler started", sweeps=[s.name for s in self.sweeps])

    async def run(self, name: str) -> int:
        """Run one sweep now; a failure is logged and the next trigger tries again."""
        sweep = next(s for s in self.sweeps if s.name == name)
        started = time.perf_counter()
        try:
            handled = await sweep.run(self.clock())
        except Exception:
            log.exception("sweep failed", sweep=name)
            return 0
        self.runs[name] = self.runs.get(name, 0) + handled
        if handled:
            log.info(
                "sweep done",
                sweep=name,
                handled=handled,
                seconds=round(time.perf_counter() - started, 3),
            )
        return handled

    async def run_all(self) -> dict[str, int]:
        """Every sweep once, in order (`pingjia scheduler --once`)."""
        return {s.name: await self.run(s.name) for s in self.sweeps}

    def shutdown(self) -> None:
        logging.getLogger("apscheduler.scheduler").removeFilter(self.overlaps)
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
