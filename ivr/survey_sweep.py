"""The `outbound_surveys` sweep: outbound rating calls (电话评价) the profile wants, placed by
the scheduler instead of an agent.

With `[ivr] outbound_survey = true`, every pending case with a number is called into the
`survey` flow once it has been completed and registered `survey_delay_minutes` ago, at most
`survey_tries` times, `survey_retry_hours` apart, oldest first, `CALLS_PER_RUN` per run, never
in the profile's quiet hours (what falls due at night is called in the morning). Each call goes
through `CallDesk.request_survey` (actor `scheduler`), so its record, its audit entries, a
refusal's `failed` row, an unacknowledged call's `unknown` row and the outcome watcher are the
ones an agent's request gets; an AMI outage places nothing and writes nothing (no try spent).

Numbers that opted out of our SMS (TD, 退订, STOP) are not called: both cities' rules make
rating voluntary and forbid disturbing the rater (Sanmenxia Art. 4, Taishan Art. 4), and a
citizen who asked us to stop asking for a rating by SMS has not asked for the question by
phone instead. An agent may still place a call for such a case by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from ivr.outbound import CallDesk
from ivr.storage import CallRepository, SurveyRule
from rating.errors import DomainError

log = structlog.get_logger("pingjia.ami")

# The sweep runs every minute: a backlog (a morning after quiet hours, a day Asterisk was
# down) rings at most this many phones a minute per process instead of hundreds at once.
CALLS_PER_RUN = 10
# Longer than a run's calls can take (each waits up to its ack time, 5 s).
LEASE = timedelta(minutes=5)


def survey_rule(desk: CallDesk) -> SurveyRule:
    ivr = desk.profile.ivr
    return SurveyRule(
        delay=timedelta(minutes=ivr.survey_delay_minutes),
        tries=ivr.survey_tries,
        retry_after=timedelta(hours=ivr.survey_retry_hours),
    )


@dataclass
class OutboundSurveys:
    """Sweep: claim the cases due a survey call, place each through the call desk."""

    desk: CallDesk
    owner: str
    per_run: int = CALLS_PER_RUN
    lease: timedelta = LEASE

    async def __call__(self, now: datetime) -> int:
        profile = self.desk.profile
        if profile.quiet_hours.next_allowed(now) != now:
            return 0
        ami = self.desk.ami
        if ami is None or not await ami.ensure_connected(self.desk.connect_wait_s):
            # Known before claiming: wait for Asterisk rather than spend every due case's
            # tries on `failed` rows. A drop during the run is recorded case by case.
            log.warning(
                "outbound surveys wait: AMI not connected", ami=str(ami.url) if ami else None
            )
            return 0
        async with self.desk.sessions() as session:
            claimed = await CallRepository(session).claim_due_surveys(
                now, survey_rule(self.desk), self.owner, now + self.lease, self.per_run
            )
            await session.commit()
        if not claimed:
            return 0
        placed = 0
        try:
            for _, case_no in claimed:
                placed += await self._call(case_no)
        finally:
            # The calls' rows now keep these cases from being due (retry interval); the lease
            # only had to cover the time until they were written.
            async with self.desk.sessions() as session:
                await CallRepository(session).release_surveys([i for i, _ in claimed])
                await session.commit()
        return placed

    async def _call(self, case_no: str) -> int:
        """1 when a call was recorded (originated or failed), 0 when none was placed."""
        try:
            await self.desk.request_survey(case_no, actor="scheduler")
        except DomainError as exc:  # rated since the claim, a call in flight, AMI dropped…
            log.info("outbound survey not placed", case_no=case_no, reason=exc.message)
            return 0
        return 1
