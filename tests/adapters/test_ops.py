"""`/healthz` and `/metrics` as an operator reads them: counts of acks, ballot batches, deliveries
and deadlines from a round played through the app, a 503 with its reason when the relay lags or the
database is gone, and never a person, a channel or a text in any series."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.ops import OpsEndpoints, PrometheusMetrics, serve_ops, shares_slack_server
from adapters.slack.runner import run_slack
from bot.app import App
from bot.config import OpsConfig
from bot.persistence.db import make_engine, make_sessionmaker
from bot.persistence.tables import OutboxRow
from bot.service.health import HealthCheck
from tests.adapters.slack.rig import rig
from tests.core import story
from tests.harness import Harness, make_harness
from tests.platform_fakes.slack import FakeSlackWebAPI
from tests.platform_fakes.slack_sim import serve_aiohttp_app


def with_metrics(app: App) -> PrometheusMetrics:
    metrics = PrometheusMetrics()
    app.core.metrics = app.relay.metrics = metrics
    return metrics


@asynccontextmanager
async def served(app: App, metrics: PrometheusMetrics, **ops: Any) -> AsyncIterator[str]:
    web_app = web.Application()
    OpsEndpoints(app, metrics, OpsConfig(**ops)).add_routes(web_app)
    async with serve_aiohttp_app(web_app) as base:
        yield base


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_a_round_and_its_deadline(engine: AsyncEngine) -> None:
    h = await make_harness(engine)
    metrics = with_metrics(h.app)
    rid = await story.start(h, vote_minutes="10")
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)
    await h.driver.command(h.person("maya"), "next")
    for n in range(1, 5):
        for name, _platform, _sector in story.PEOPLE:
            await story.vote(h, name, n, "Agree")
    h.clock.advance(minutes=11)
    assert await h.app.scheduler.run_once() >= 1
    await h.app.relay.drain()
    async with served(h.app, metrics) as base:
        status, text = await get(base + "/metrics")
    assert status == 200
    got = samples(text)
    assert got[("convene_ballot_batch_size_count", ())] >= 1
    assert got[("convene_ballot_batch_size_sum", ())] >= 24  # six people, four ideas
    assert got[("convene_relay_deliveries_total", (("platform", "slack"),))] > 0
    assert got[("convene_relay_deliveries_total", (("platform", "discord"),))] > 0
    assert got[("convene_timers_fired_total", (("kind", "phase_deadline"),))] == 1
    assert got[("convene_relay_lag_seconds", ())] == 0
    assert got[("convene_database_up", ())] == 1
    # No series names a person, a round or what anyone wrote.
    values = {v for (_name, labels) in got for _k, v in labels}
    assert all(re.fullmatch(r"[a-z_]+|\+Inf|[0-9.]+", v) for v in values), values
    people = [name for name, _p, _s in story.PEOPLE]
    texts = [t for ts in story.IDEAS.values() for t in ts]
    assert not any(word in text for word in [rid, *people, *texts])
    await h.close()


async def test_acks_are_counted_per_platform_and_kind(tmp_path: Path) -> None:
    async with FakeSlackWebAPI() as fake_slack, rig(fake_slack, tmp_path) as r:
        metrics = with_metrics(r.app)
        await r.command("maya", "help")
        await r.command("maya", "status")
        await r.bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
        async with served(r.app, metrics) as base:
            _status, text = await get(base + "/metrics")
    assert samples(text)[("convene_acks_total", (("kind", "command"), ("platform", "slack")))] == 2


async def test_healthz_is_ok_then_503_with_the_reason_when_the_relay_lags(engine: AsyncEngine) -> None:
    h = await make_harness(engine)
    metrics = with_metrics(h.app)
    async with served(h.app, metrics, max_relay_lag_seconds=60) as base:
        status, body = await get(base + "/healthz")
        assert status == 200
        assert '"status": "ok"' in body
        await add_due_row(h, retried_minutes_ago=None)  # never tried: aged from when it is first seen
        assert (await get(base + "/healthz"))[0] == 200
        h.clock.advance(seconds=61)
        status, body = await get(base + "/healthz")
        assert status == 503
        assert "relay lag 61 s is over 60 s" in body
        assert '"due_rows": 1' in body
        _s, text = await get(base + "/metrics")
        assert samples(text)[("convene_relay_lag_seconds", ())] == 61
    await h.close()


async def test_a_row_retried_long_ago_is_aged_from_its_retry_time(engine: AsyncEngine) -> None:
    h = await make_harness(engine)
    check = HealthCheck(h.app.sessions, h.clock, 120)
    await add_due_row(h, retried_minutes_ago=5)
    health = await check.check()
    assert not health.ok
    assert health.relay_lag_seconds == 300
    await h.close()


async def add_due_row(h: Harness, *, retried_minutes_ago: float | None) -> None:
    when = None if retried_minutes_ago is None else h.clock.now() - dt.timedelta(minutes=retried_minutes_ago)
    async with h.app.sessions() as s, s.begin():
        s.add(
            OutboxRow(
                platform="slack",
                workspace_id="T1",
                channel_id="C1",
                visibility="public",
                body={"parts": []},
                status="pending",
                attempts=0 if when is None else 1,
                next_attempt_at=when,
            )
        )


async def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path, engine: AsyncEngine) -> None:
    h = await make_harness(engine)
    gone = make_engine(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db")
    check = HealthCheck(make_sessionmaker(gone), h.clock)
    health = await check.check()
    assert health.as_json() == {
        "status": "unhealthy",
        "database": "unreachable",
        "relay_lag_seconds": None,
        "due_rows": None,
        "reasons": ["database unreachable"],
    }
    await gone.dispose()
    await h.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_slack_http_mode_serves_healthz_beside_its_events(tmp_path: Path) -> None:
    async with FakeSlackWebAPI() as fake_slack, rig(fake_slack, tmp_path) as r:
        port = free_port()
        slack = replace(r.app.config.slack, mode="http", http=replace(r.app.config.slack.http, port=port))
        config = replace(r.app.config, slack=slack, ops=OpsConfig(port=port))
        r.app.config = config
        assert shares_slack_server(r.app)
        metrics = with_metrics(r.app)
        endpoints = OpsEndpoints(r.app, metrics)
        env = {slack.bot_token_env: fake_slack.bot_token, slack.signing_secret_env: fake_slack.signing_secret}
        stop = asyncio.Event()
        task = asyncio.create_task(run_slack(r.app, slack, stop, env=env, extra_routes=endpoints.add_routes))
        try:
            status, body = await until_served(f"http://127.0.0.1:{port}/healthz")
            assert status == 200
            assert '"database": "ok"' in body
            assert (await get(f"http://127.0.0.1:{port}/metrics"))[0] == 200
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)


async def test_ops_serves_on_a_port_of_its_own(engine: AsyncEngine) -> None:
    h = await make_harness(engine)
    port = free_port()
    h.app.config = replace(h.app.config, ops=OpsConfig(port=port))
    assert not shares_slack_server(h.app)
    endpoints = OpsEndpoints(h.app, with_metrics(h.app))
    stop = asyncio.Event()
    task = asyncio.create_task(serve_ops(h.app, endpoints, stop))
    try:
        assert (await until_served(f"http://127.0.0.1:{port}/healthz"))[0] == 200
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await h.close()


async def until_served(url: str) -> tuple[int, str]:
    for _ in range(100):
        try:
            return await get(url)
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    return await get(url)


async def test_discord_interactions_are_counted_as_acks(tmp_path: Path) -> None:
    from tests.adapters.discord.rig import make_rig

    async with make_rig(tmp_path) as dr, dr.running():
        metrics = with_metrics(dr.app)
        await dr.reply(await dr.slash("owner", "help"))
        async with served(dr.app, metrics) as base:
            _status, text = await get(base + "/metrics")
    assert samples(text)[("convene_acks_total", (("kind", "command"), ("platform", "discord")))] == 1
