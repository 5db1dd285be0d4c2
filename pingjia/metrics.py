"""Prometheus metrics, one registry per app so tests can build many apps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector


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
        self.agi = AgiMetrics(self.registry)  # FastAGI sessions (ivr.server.AgiObserver)
        # connected | disconnected | not_configured; set by the composition root.
        self.ami_state: Callable[[], str] | None = None
        self.registry.register(_AmiCollector(self))

    def render(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    def middleware(self) -> Middleware:
        # The labelled children kept per (method, route, status) and per route: `labels()`
        # takes a lock and builds a key on every call, twice a request (the SMS webhook's
        # CPU per reply, bench/sms_bench.py). As many as the metrics hold anyway.
        counted: dict[tuple[str, str, int], Any] = {}
        timed: dict[str, Any] = {}

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
                key = (request.method, name, status)
                counter = counted.get(key)
                if counter is None:
                    counter = counted[key] = self.http_requests.labels(
                        request.method, name, str(status)
                    )
                counter.inc()
                histogram = timed.get(name)
                if histogram is None:
                    histogram = timed[name] = self.http_seconds.labels(name)
                histogram.observe(time.perf_counter() - started)

        return observe


class AgiMetrics:
    """FastAGI sessions and the server's turnaround per AGI command (what Asterisk waits on)."""

    # Turnaround is milliseconds when all is well; the target is p99 under 10 ms.
    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions_started = Counter(
            "pingjia_agi_sessions_started_total",
            "FastAGI sessions started, by script",
            ["script"],
            registry=registry,
        )
        self.sessions_finished = Counter(
            "pingjia_agi_sessions_finished_total",
            "FastAGI sessions ended, by script and outcome "
            "(completed, hangup, agi_error, error, cancelled, unknown_script)",
            ["script", "outcome"],
            registry=registry,
        )
        self.connections_rejected = Counter(
            "pingjia_agi_connections_rejected_total",
            "connections on the FastAGI port without a valid AGI environment",
            registry=registry,
        )
        self.turnaround = Histogram(
            "pingjia_agi_command_turnaround_seconds",
            "time from Asterisk's previous reply to our next AGI command",
            ["command"],
            buckets=self.BUCKETS,
            registry=registry,
        )
        self._turnaround_by: dict[str, Any] = {}
        self.missing_prompts = Counter(
            "pingjia_agi_missing_prompts_total",
            "prompts Asterisk could not play because its host has no such sound (the call "
            "went on without them)",
            ["prompt"],
            registry=registry,
        )
        self.recording_failures = Counter(
            "pingjia_agi_recording_failures_total",
            "voice messages not recorded because of the Asterisk host (beep: no beep sound; "
            "writefile: the recordings folder cannot be written)",
            ["problem"],
            registry=registry,
        )

    def started(self, script: str) -> None:
        self.sessions_started.labels(script).inc()

    def finished(self, script: str, outcome: str) -> None:
        self.sessions_finished.labels(script, outcome).inc()

    def rejected(self) -> None:
        self.connections_rejected.inc()

    def missing_prompt(self, prompt: str) -> None:
        self.missing_prompts.labels(prompt).inc()

    def recording_failed(self, problem: str) -> None:
        self.recording_failures.labels(problem).inc()

    def command(self, command: str, turnaround_s: float) -> None:
        # The labelled child kept per command word: `labels()` takes a lock and builds a key
        # on every call, and this runs for every AGI command.
        child = self._turnaround_by.get(command)
        if child is None:
            child = self._turnaround_by[command] = self.turnaround.labels(command)
        child.observe(turnaround_s)


class _AmiCollector(Collector):
    """`pingjia_ami_connected`, read when scraped; absent when AMI is not configured."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.metrics.ami_state() if self.metrics.ami_state is not None else None
        if state is None or state == "not_configured":
            return
        yield GaugeMetricFamily(
            "pingjia_ami_connected",
            "1 while logged in to Asterisk's AMI and answering its pings, else 0",
            value=1.0 if state == "connected" else 0.0,
        )
