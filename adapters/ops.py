"""``/healthz`` and ``/metrics`` for `convene run` (``ops.port``), on their own port or, in Slack's
HTTP mode with the same port, beside ``/slack/events`` on Slack's own aiohttp server.

``/healthz``: 200 ``{"status": "ok", ...}`` when the database answers and the relay keeps up; 503
with the reasons otherwise (see ``bot.service.health``). ``/metrics``: Prometheus' text format.

Every label is a fixed word: a platform, a kind of acknowledgement, a timer kind, ``failed`` or
``offline``. Anything else is counted as ``other``, so no series ever carries an id or a text.
"""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.app import App
from bot.config import OpsConfig
from bot.metrics import AckKind, FailureKind
from bot.refs import Platform
from bot.service.health import Health, HealthCheck

log = logging.getLogger("convene.ops")

PLATFORMS = frozenset(p.value for p in Platform)
ACK_KINDS = frozenset({"command", "click", "form", "event"})
_TIMER_KIND = re.compile(r"[a-z][a-z_]{0,39}")
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def _platform(value: str) -> str:
    return value if value in PLATFORMS else "other"


class PrometheusMetrics:
    """``bot.metrics.Metrics`` in a registry of its own (one per app, so tests never share counts)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.acks = Counter(
            "convene_acks", "Platform requests acknowledged", ["platform", "kind"], registry=r
        )
        self.batches = Histogram(
            "convene_ballot_batch_size",
            "Ballots and deck moves committed together, per transaction",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "convene_relay_deliveries",
            "Outbox rows delivered by this worker's relay",
            ["platform"],
            registry=r,
        )
        self.failures = Counter(
            "convene_relay_failures",
            "Delivery attempts that failed (retried with backoff) or found the platform offline",
            ["platform", "reason"],
            registry=r,
        )
        self.timers = Counter("convene_timers_fired", "Timers that did their work", ["kind"], registry=r)
        self.lag = Gauge(
            "convene_relay_lag_seconds",
            "Age of the oldest due, undelivered outbox row (the deployment's, read at scrape)",
            registry=r,
        )
        self.due = Gauge("convene_outbox_due_rows", "Outbox rows due and not delivered", registry=r)
        self.database = Gauge(
            "convene_database_up", "1 when the database answered the last check", registry=r
        )

    def ack(self, platform: str, kind: AckKind) -> None:
        self.acks.labels(_platform(platform), kind if kind in ACK_KINDS else "other").inc()

    def ballot_batch(self, size: int) -> None:
        self.batches.observe(size)

    def delivered(self, platform: str) -> None:
        self.deliveries.labels(_platform(platform)).inc()

    def delivery_failed(self, platform: str, why: FailureKind) -> None:
        self.failures.labels(_platform(platform), why if why in ("failed", "offline") else "other").inc()

    def timer_fired(self, kind: str) -> None:
        self.timers.labels(kind if _TIMER_KIND.fullmatch(kind) else "other").inc()

    def observe(self, health: Health) -> None:
        self.database.set(1 if health.database else 0)
        if health.relay_lag_seconds is not None:
            self.lag.set(health.relay_lag_seconds)
        if health.due_rows is not None:
            self.due.set(health.due_rows)


class OpsEndpoints:
    def __init__(self, app: App, metrics: PrometheusMetrics, config: OpsConfig | None = None) -> None:
        config = config or app.config.ops
        self.metrics = metrics
        self.health = HealthCheck(app.sessions, app.core.clock, config.max_relay_lag_seconds)

    def add_routes(self, web_app: web.Application) -> None:
        web_app.router.add_get("/healthz", self.healthz)
        web_app.router.add_get("/metrics", self.prometheus)

    async def _check(self) -> Health:
        health = await self.health.check()
        self.metrics.observe(health)
        return health

    async def healthz(self, request: web.Request) -> web.Response:
        health = await self._check()
        return web.json_response(health.as_json(), status=200 if health.ok else 503)

    async def prometheus(self, request: web.Request) -> web.Response:
        await self._check()
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def shares_slack_server(app: App) -> bool:
    """In Slack's HTTP mode on ``ops.port``: served by Slack's aiohttp server, beside its path."""
    cfg = app.config
    return (
        cfg.slack.enabled
        and cfg.slack.mode == "http"
        and cfg.ops.port is not None
        and cfg.ops.port == cfg.slack.http.port
    )


async def serve_ops(app: App, endpoints: OpsEndpoints, stop: asyncio.Event) -> None:
    """``/healthz`` and ``/metrics`` on ``ops.host:ops.port`` until ``stop`` is set."""
    ops = app.config.ops
    assert ops.port is not None
    web_app = web.Application()
    endpoints.add_routes(web_app)
    runner = web.AppRunner(web_app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, ops.host, ops.port)
        await site.start()
        log.info("ops: /healthz and /metrics on http://%s:%s", ops.host, ops.port)
        await stop.wait()
    finally:
        await runner.cleanup()
