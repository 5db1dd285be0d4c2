"""The composition root: builds every service once from the settings and hands them down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from pydantic_settings import BaseSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.ami import AmiClient, AmiUrl
from ivr.dial import DialTemplate
from ivr.outbound import CallDesk
from pingjia.auth import TokenService
from pingjia.metrics import Metrics
from pingjia.settings import Settings
from pingjia.tables import metadata
from rating.db import engine as db
from rating.dead_letters.desk import DeadLetterDesk
from rating.policy.loader import load_profile
from rating.policy.profile import Profile
from rating.privacy import PhoneVault, load_or_create_secret
from rating.ratings.second_rating import SecondRatings
from rating.ratings.service import RatingService
from rating.state import SharedState, make_state
from rating.stats.service import StatsService
from rating.tickets.alerts import Alerts
from rating.tickets.service import TicketService
from sms.service import SmsService
from sms.setup import Context, ProviderSetup, choose_provider
from sms.template_codes import check_template_codes

log = structlog.get_logger("pingjia")
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Everything the parts of pingjia share; tests build it with fakes."""

    settings: Settings
    profile: Profile
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    vault: PhoneVault
    state: SharedState
    ratings: RatingService
    tickets: TicketService
    alerts: Alerts
    stats: StatsService
    tokens: TokenService
    metrics: Metrics
    clock: Clock
    sms: SmsService
    calls: CallDesk  # outbound calls through AMI (none placed without PINGJIA_AMI_URL)
    dead_letters: DeadLetterDesk  # what the bridge gave up on, for the API and the console
    sms_provider: ProviderSetup  # the SMS provider with its plug-in, settings and callbacks

    async def database_ok(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # a health check reports, it never raises
            log.warning("database health check failed", exc_info=True)
            return False

    async def close(self) -> None:
        await self.calls.close()
        await self.sms.inbox.intake.drain()  # replies the webhook left handling, their answers
        await self.sms.provider.close()
        await self.state.close()
        await self.engine.dispose()


def dial_templates(settings: Settings) -> tuple[DialTemplate, DialTemplate]:
    """PINGJIA_OUTBOUND_DIAL and PINGJIA_AGENT_DIAL, parsed by the IVR part (the settings keep
    plain strings); a bad one raises DialTemplateError naming its variable."""
    return (
        DialTemplate.parse(settings.outbound_dial, "number", "PINGJIA_OUTBOUND_DIAL"),
        DialTemplate.parse(settings.agent_dial, "extension", "PINGJIA_AGENT_DIAL"),
    )


def call_desk(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    profile: Profile,
    vault: PhoneVault,
    clock: Clock,
) -> CallDesk:
    """Outbound calls: AMI from PINGJIA_AMI_URL, dial strings from their templates."""
    outbound_dial, agent_dial = dial_templates(settings)
    return CallDesk(
        sessions,
        profile,
        vault,
        clock,
        AmiClient(AmiUrl.parse(settings.ami_url)) if settings.ami_url else None,
        outbound_dial=outbound_dial,
        agent_dial=agent_dial,
    )


async def build_services(
    settings: Settings,
    *,
    migrate: bool = True,
    clock: Clock = system_clock,
    state: SharedState | None = None,
    sms_settings: BaseSettings | None = None,
) -> Services:
    """Open the database (creating or upgrading its schema) and wire the services.
    `sms_settings`: the SMS provider's settings block (default: read from the environment)."""
    profile = load_profile(settings.profile)
    callback_key = key.get_secret_value() if (key := settings.sms_callback_key) else None
    # Checked before the database is touched: a bad SMS setting stops start-up here, and so
    # does a template provider without a code for a template in use.
    sms_choice = choose_provider(settings.sms_provider, callback_key, block=sms_settings)
    codes = check_template_codes(profile, sms_choice.plugin, settings.sms_template_codes)
    secret, generated = load_or_create_secret(settings.secret_key, settings.data_dir)
    if generated:
        log.warning(
            "generated a new secret key for phone encryption; back it up or set "
            "PINGJIA_SECRET_KEY, since stored numbers cannot be read without it",
            path=str(settings.data_dir / "secret.key"),
        )
    dial_templates(settings)  # a bad dial string stops start-up before the database opens
    if migrate:
        await db.upgrade(settings.database_url, metadata=metadata())
    engine = db.create_engine(settings.database_url, settings.db_pool_size)
    sessions = db.sessionmaker(engine)
    vault = PhoneVault(secret)
    ratings = RatingService(sessions, profile, vault)
    chosen = sms_choice.build(
        Context(
            public_url=settings.public_url,
            signature=profile.sms.signature,
            clock=clock,
            connections=settings.sms_concurrency,
            callback_key=callback_key,
            template_codes=codes,
        )
    )
    second = SecondRatings(sessions, profile, vault)
    sms = SmsService(
        sessions,
        profile,
        vault,
        chosen.provider,
        ratings,
        settings.public_url,
        second=second,
        concurrency=settings.sms_concurrency,
    )
    sms.inbox.intake.queued = settings.sms_replies == "queued"
    services = Services(
        settings=settings,
        profile=profile,
        engine=engine,
        sessions=sessions,
        vault=vault,
        state=state or make_state(settings.redis_url),
        ratings=ratings,
        tickets=TicketService(sessions, profile),
        # Deadline alerts go to agency contacts through the SMS part's generic send.
        alerts=Alerts(sessions, profile, vault, send_sms=sms.send),
        stats=StatsService(sessions, profile),
        tokens=TokenService(sessions, clock),
        metrics=Metrics(),
        clock=clock,
        sms=sms,
        calls=call_desk(settings, sessions, profile, vault, clock),
        dead_letters=DeadLetterDesk(sessions),
        sms_provider=chosen,
    )
    services.metrics.ami_state = lambda: services.calls.ami_state()
    return services
