"""`pingjia serve`'s start and stop, as the aiohttp app's cleanup contexts.

aiohttp enters the contexts in list order during `AppRunner.setup()` (before the HTTP site
listens) and leaves them in reverse during `AppRunner.cleanup()`, after the HTTP site has
stopped accepting. A context that fails to start leaves the ones already entered, so a bad
start (prompts not built, the AGI port taken) closes what it opened. The order, and why:

1. the services (already built: the routes need them) are closed last, once nothing uses the
   database, the state store or the SMS provider any more; the SMS provider starts what it
   opens itself (an SMPP session binds) here, first;
2. FastAGI starts after them and, on the way out, lets running calls finish (a grace) and
   waits for their rating writes before the database closes;
3. the sweeps start last, once calls are served, and stop first, so no sweep starts while
   the calls and the database wind down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ivr.server import AgiServer
from pingjia.app import build_app
from pingjia.background import Background, build_background
from pingjia.composition import Services
from pingjia.ivr_server import start_agi
from sms.service import as_events

AGI = web.AppKey("agi", AgiServer)
BACKGROUND = web.AppKey("background", Background)
Lifespan = Callable[[web.Application], AsyncIterator[None]]  # one cleanup context


def serving_app(services: Services) -> web.Application:
    """The HTTP app of `pingjia serve`, which also starts and stops FastAGI and the sweeps."""
    app = build_app(services)
    app.cleanup_ctx.extend([_services(services), _agi(services), _sweeps(services)])
    return app


def _services(services: Services) -> Lifespan:
    async def close_at_the_end(_app: web.Application) -> AsyncIterator[None]:
        try:
            await services.sms_provider.start(as_events(services.sms))
        except BaseException:
            await services.close()
            raise
        yield
        await services.close()

    return close_at_the_end


def _agi(services: Services) -> Lifespan:
    async def agi(app: web.Application) -> AsyncIterator[None]:
        server = await start_agi(services)
        app[AGI] = server
        yield
        await server.close()

    return agi


def _sweeps(services: Services) -> Lifespan:
    async def sweeps(app: web.Application) -> AsyncIterator[None]:
        jobs = build_background(services)
        app[BACKGROUND] = jobs
        if services.settings.sweeps:  # else `pingjia scheduler` processes run them
            jobs.scheduler.start()
        yield
        await jobs.close()

    return sweeps
