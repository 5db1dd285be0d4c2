"""The aiohttp application: API routes, health, metrics, OpenAPI, JSON errors."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from console.views import Console
from console.web import ConsoleDeps
from pingjia.api.calls import api as calls_api
from pingjia.api.dead_letters import api as dead_letters_api
from pingjia.api.edge import (
    TrustedProxies,
    body_type_middleware,
    client_middleware,
    headers_middleware,
)
from pingjia.api.errors import MAX_BODY, error_middleware
from pingjia.api.limits import signin_limit
from pingjia.api.outage import outage_middleware
from pingjia.api.pages_doc import page_paths
from pingjia.api.profile_doc import add_profile_rules
from pingjia.api.routing import IDEMPOTENCY_KEYS, PRINCIPAL_KEY, Api, openapi
from pingjia.api.schemas import Health
from pingjia.api.stats import api as stats_api
from pingjia.api.tickets import api as ticket_api
from pingjia.api.tokens import api as tokens_api
from pingjia.api.views import SERVICES, api
from pingjia.composition import Services
from pingjia.recordings import recording_folder
from ratepage.links import Links
from ratepage.page import RatingPage
from rating.access.idempotency import IdempotencyKeys
from sms.service import as_events


def package_version() -> str:
    try:
        return version("pingjia")
    except PackageNotFoundError:
        return "0+unknown"


def build_app(services: Services) -> web.Application:
    """Wire the HTTP side over already-built services."""
    app = web.Application(
        client_max_size=services.settings.max_body_bytes,
        middlewares=[
            client_middleware(TrustedProxies.parse(services.settings.trusted_proxies)),
            services.metrics.middleware(),
            headers_middleware(services.settings.public_url),
            error_middleware,
            body_type_middleware,
            outage_middleware,
            signin_limit(services.state),
        ],
    )
    app[SERVICES] = services
    app[PRINCIPAL_KEY] = services.tokens.authenticate
    app[IDEMPOTENCY_KEYS] = IdempotencyKeys(services.sessions, services.clock)
    app[MAX_BODY] = services.settings.max_body_bytes
    every = Api()
    for part in (api, ticket_api, stats_api, calls_api, dead_letters_api, tokens_api):
        part.install(app)
        every.routes.extend(part.routes)
    document = openapi(every, "pingjia", package_version())
    add_profile_rules(document, services.profile)
    document["paths"]["/healthz"] = {
        "get": {
            "summary": "Health",
            "description": "status is `degraded` when the state store or AMI (configured but not "
            "connected) is down; HTTP 503 only when the database is",
            "responses": {"200": {"description": "ok"}, "503": {"description": "degraded"}},
        }
    }
    document["paths"]["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "text exposition"}},
        }
    }

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def healthz(_request: web.Request) -> web.Response:
        database = await services.database_ok()
        state = await services.state.ping()
        ami = services.calls.ami_state()
        health = Health(
            status="ok" if database and state and ami != "disconnected" else "degraded",
            database=database,
            state=state,
            ami=ami,
            profile=services.profile.name,
        )
        return web.json_response(health.model_dump(), status=200 if database else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return services.metrics.render()

    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    install_sms(app, services)
    install_rating_page(app, services)
    install_console(app, services)
    document["paths"].update(page_paths(app))
    return app


def install_sms(app: web.Application, services: Services) -> None:
    """The SMS provider's callbacks (behind their ?key=, no bearer token)."""
    app.add_routes(services.sms_provider.routes(as_events(services.sms)))


def install_rating_page(app: web.Application, services: Services) -> None:
    """The rating-link page /r/{token}, over the domain's rating links."""
    links = Links(services.sessions, services.profile, services.ratings)
    RatingPage(
        links, services.profile, services.state, services.settings.public_url, services.clock
    ).install(app)


def install_console(app: web.Application, services: Services) -> None:
    """The built-in console under /console: the ticket system when no 12345 system is set."""
    calls = services.calls
    Console(
        ConsoleDeps(
            tickets=services.tickets,
            stats=services.stats,
            alerts=services.alerts,
            dead_letters=services.dead_letters,
            sessions=services.sessions,
            profile=services.profile,
            clock=services.clock,
            secret=services.vault.secret,
            public_url=services.settings.public_url,
            # Click-to-call back only with Asterisk configured; the page says why otherwise.
            callback=calls.request_callback if services.settings.ami_url else None,
            locate_voice=recording_folder(
                services.settings.recordings_dir, services.settings.recordings_mount
            ).locate,
        )
    ).install(app)
