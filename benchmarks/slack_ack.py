# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Ack latency of a signed vote click (block_actions) through Slack HTTP mode.

Compares convene's Slack adapter (front signature check -> bolt -> ack, then core.press + outbox
relay in the same event loop) with a bare slack-bolt AsyncApp that only acks, in the same run,
against the fake Slack on 127.0.0.1 (in its own process). 50 concurrent clients; prints p50/p99 per
app and the ratio.

The startup heap is frozen (`runner.freeze_startup_heap`) as ``convene run`` does; both apps live
in this process, so both benefit. Every pass starts quiet: convene's work from the previous pass
(listeners finishing after their acks, the ballot queue, the relay delivering one "vote recorded"
ephemeral per click) is waited out first, so neither side is measured under the other's leftovers.
Convene's own background work *during* its pass is part of what is measured, as in production. The
time the relay then took to deliver a pass's replies is printed too.

    .venv/bin/python benchmarks/slack_ack.py [--clients 50] [--clicks 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import create_bolt_app, web_app
from adapters.slack.port import SlackChatPort, make_client
from adapters.slack.runner import freeze_startup_heap
from bot.app import build_app
from bot.config import AppConfig, DatabaseConfig, SlackConfig, SlackConveners
from bot.domain.commands import Context
from bot.keys import MemoryKeyStore
from bot.refs import ConversationRef, Platform, UserRef
from bot.service.textcmd import run_text
from tests.platform_fakes.slack import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_SIGNING_SECRET,
    SlackPayloads,
    serve_aiohttp_app,
    signed_headers,
)

PATH = "/slack/events"
TEAM, CHANNEL = "T0CONVENE", "C0GENERAL"


FAKE_SERVER = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from tests.platform_fakes.slack import FakeSlackWebAPI

async def main():
    async with FakeSlackWebAPI() as fake:
        print(fake.base_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


class FakeInOtherProcess:
    """The fake Slack in its own process, so its work does not share the measured event loop."""

    bot_token = DEFAULT_BOT_TOKEN
    signing_secret = DEFAULT_SIGNING_SECRET

    def __init__(self) -> None:
        self.payloads = SlackPayloads()
        self.base_url = ""
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> FakeInOtherProcess:
        root = ROOT
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FAKE_SERVER,
            root,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        self.base_url = (await self._proc.stdout.readline()).decode().strip()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        await self._proc.wait()

    def web_client(self) -> AsyncWebClient:
        return AsyncWebClient(token=self.bot_token, base_url=self.base_url)


async def quiesce(app: Any, bolt: AsyncApp) -> float:
    """Wait until convene has nothing left to do (listeners, ballot queue, outbox); returns seconds."""
    from sqlalchemy import func, select

    from bot.persistence.tables import OutboxRow

    t0 = time.perf_counter()
    await bolt.convene_handlers.wait_idle()  # type: ignore[attr-defined]
    while True:
        async with app.sessions() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status.in_(["pending", "in_flight"]))
            )
        if not left:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def prepare_round(core: Any, users: list[str]) -> list[str]:
    """A round in the vote phase with every user joined; returns the agree/disagree/pass ids."""
    n = 0

    def ctx(user: str, convener: bool = False) -> Context:
        nonlocal n
        n += 1
        return Context(
            UserRef(Platform.SLACK, TEAM, user, user.lower()),
            ConversationRef(Platform.SLACK, TEAM, CHANNEL),
            request_id=f"bench:{n}",
            is_convener=convener,
        )

    form = await run_text(core, ctx("U0MAYA", True), "start")
    assert form is not None
    await core.submit_form(
        ctx("U0MAYA", True), form.form_id, {"title": "Bench", "purpose": "p", "template": "standard"}
    )
    for u in users:
        f = await run_text(core, ctx(u), "join")
        assert f is not None
        await core.submit_form(ctx(u), f.form_id, {"sector": "resident"})
    for i, u in enumerate(users[:5]):
        f = await run_text(core, ctx(u), "contribute")
        assert f is not None
        await core.submit_form(ctx(u), f.form_id, {"text": f"idea {i}"})
    await run_text(core, ctx("U0MAYA", True), "next")
    from sqlalchemy import select

    from bot.persistence.tables import RoundRow

    async with core.sessions() as s:
        rid = await s.scalar(select(RoundRow.id))
    return [f"cv:{rid}:v:{i}:{c}" for i in range(1, 6) for c in "adp"]


async def measure(url: str, secret: str, bodies: list[list[bytes]]) -> list[float]:
    latencies: list[float] = []
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def client(mine: list[bytes]) -> None:
            for body in mine:
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    **signed_headers(secret, body),
                }
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(client(m) for m in bodies))
    return latencies


async def main(clients: int, clicks: int, rounds: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    users = [f"U0B{i:04d}" for i in range(clients)]
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeInOtherProcess() as fake:
            config = AppConfig(
                database=DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp}/bench.db"),
                slack=SlackConfig(
                    enabled=True, mode="http", api_base_url=fake.base_url, conveners=SlackConveners()
                ),
            )
            port = SlackChatPort(make_client(fake.bot_token, fake.base_url))
            app = await build_app(config, {"slack": port}, keys=MemoryKeyStore())
            try:
                actions = await prepare_round(app.core, users)
                await app.relay.drain()
                app.start_background()  # the relay delivers ephemerals while we measure, as in production
                convene = create_bolt_app(
                    app.core,
                    config.slack,
                    client=make_client(fake.bot_token, fake.base_url),
                    signing_secret=fake.signing_secret,
                )
                bare = AsyncApp(client=fake.web_client(), signing_secret=fake.signing_secret)

                @bare.action(__import__("re").compile("^cv:"))
                async def only_ack(ack: AsyncAck) -> None:
                    await ack()

                def bodies() -> list[list[bytes]]:
                    out = []
                    for u in users:
                        mine = []
                        for k in range(clicks):
                            a = actions[(k + hash(u)) % len(actions)]
                            inbound = fake.payloads.block_actions(
                                a, a, user_id=u, user_name=u.lower(), channel_id=CHANNEL
                            )
                            mine.append(inbound.body)
                        out.append(mine)
                    return out

                results: dict[str, list[float]] = {"bare": [], "convene": []}
                drains: list[float] = []
                async with (
                    serve_aiohttp_app(web_app(convene, fake.signing_secret, PATH)) as c_url,
                    serve_aiohttp_app(bare.web_app(path=PATH)) as b_url,
                ):
                    urls = {"bare": b_url + PATH, "convene": c_url + PATH}
                    for name in urls:  # warm up (bolt's auth.test, connections, caches)
                        await measure(urls[name], fake.signing_secret, [m[:2] for m in bodies()])
                    freeze_startup_heap()  # as run_slack does before serving (both apps share the process)
                    for _ in range(rounds):
                        for name in ("bare", "convene"):
                            waited = await quiesce(app, convene)
                            if name == "bare" and results["convene"]:
                                drains.append(waited)
                            await asyncio.sleep(0.2)
                            results[name] += await measure(urls[name], fake.signing_secret, bodies())
                    drains.append(await quiesce(app, convene))
                ballots = app.core.ingest.batches
            finally:
                await app.aclose()  # closes the port's session too
    print(
        f"signed vote clicks, HTTP mode, {clients} concurrent clients, {clicks} clicks each, {rounds} rounds"
    )
    for name, values in results.items():
        print(
            f"{name:8s} n={len(values):5d}  p50={pct(values, 50) * 1000:7.2f} ms  "
            f"p99={pct(values, 99) * 1000:7.2f} ms  mean={statistics.fmean(values) * 1000:7.2f} ms"
        )
    ratio = pct(results["convene"], 99) / pct(results["bare"], 99)
    print(f"p99 ratio convene/bare = {ratio:.2f} (goal <= 1.5); ballot batches committed: {ballots}")
    print(
        f"after each convene pass, its {clients * clicks} private replies were delivered within "
        + ", ".join(f"{d:.1f}" for d in drains)
        + " s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.clicks, args.rounds))
