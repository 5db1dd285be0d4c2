"""Prometheus metrics, one registry per app so tests can build many apps."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """The counters pingjia exposes on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "pingjia_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "pingjia_http_request_seconds", "HTTP request time", ["route"], registry=self.registry
        )
        self.evaluations = Counter(
            "pingjia_evaluations_registered_total",
            "evaluations opened for completed cases",
            registry=self.registry,
        )
        self.ratings = Counter(
            "pingjia_ratings_total",
            "ratings recorded by channel, level and whether adopted",
            ["channel", "level", "adopted"],
            registry=self.registry,
        )
        self.tickets = Counter(
            "pingjia_tickets_created_total", "bad-review tickets opened", registry=self.registry
        )

    def render(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    def middleware(self) -> Middleware:
        @web.middleware
        async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                self.http_requests.labels(request.method, name, str(status)).inc()
                self.http_seconds.labels(name).observe(time.perf_counter() - started)

        return observe
