"""What every module of the SMS part is handed: the services it works with, typed.

Built once by `SmsService` and handed to the sender, the sweeps, the notices, the receipts and
each stage of the reply pipeline, so none of them holds the service or reaches into another's
private names (arq's typed context handed to every job, STYLE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rating.policy.profile import Profile
from rating.privacy import PhoneVault
from rating.ratings.second_rating import SecondRatings
from rating.ratings.service import RatingService
from sms.providers import SmsProvider
from sms.segments import link_for


@dataclass
class SmsContext:
    """The SMS part's dependencies; `second` is None where 追评 is not wired. One instance is
    shared by every module of the service, so a provider swapped before use (a benchmark's
    SMPP gateway) is swapped for all of them."""

    sessions: async_sessionmaker[AsyncSession]
    profile: Profile
    vault: PhoneVault
    provider: SmsProvider
    ratings: RatingService
    public_url: str  # without a trailing slash
    second: SecondRatings | None = None

    def link(self, token: str | None) -> str:
        """The rating link of a token; the bare public URL when there is none."""
        return link_for(self.public_url, token) if token else self.public_url

    def quiet(self, now: datetime) -> bool:
        """Whether the profile's quiet hours hold at `now` (sweeps send nothing then)."""
        return self.profile.quiet_hours.next_allowed(now) != now

    def local_day(self, now: datetime) -> tuple[datetime, datetime]:
        """The local day of `now`, in UTC bounds: the daily cap counts per local day."""
        tz = self.profile.tz
        start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        return start, start + timedelta(days=1)
