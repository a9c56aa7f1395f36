# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Signed deck clicks (block_actions) through Slack HTTP mode: the ack, and the click to its next card.

Compares convene's Slack adapter (front signature check -> bolt -> ack, then core.press, the ballot
batch and the next card posted to the click's response_url, in the same event loop) with a bare
slack-bolt AsyncApp that only acks, in the same run, against the fake Slack on 127.0.0.1 (in its own
process). Concurrent clients, each a voter clicking through their private deck: a convene client
clicks the next card's "Agree" (or "Back" once done) as soon as that card reached its response_url
(served by the fake's process, standing for Slack, which tells this one); a bare client clicks again
as soon as it is acked. Prints p50/p99 of the bare ack, convene's ack, and convene's click -> next
card, with the ratios against the bare ack (goal <= 1.5 for both).

The startup heap is frozen (`runner.freeze_startup_heap`) as ``convene run`` does; both apps live
in this process, so both benefit. Every pass starts quiet: convene's work from the previous pass is
waited out first, so neither side is measured under the other's leftovers.

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
from aiohttp import WSMsgType, web
from tests.platform_fakes.slack import FakeSlackWebAPI

SOCKETS = []


def next_action(card):
    ids = {
        el["text"]["text"]: el["action_id"]
        for b in card.get("blocks", [])
        if b.get("type") == "actions"
        for el in b["elements"]
    }
    return ids.get("Agree") or ids.get("Back") or ""


async def card(request):
    # Slack's response_url endpoint, for the deck's cards: tells the benchmark each card's next click.
    action = next_action(await request.json())
    for ws in SOCKETS:
        await ws.send_str(request.match_info["key"] + " " + action)
    return web.json_response({"ok": True})


async def listen(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    SOCKETS.append(ws)
    async for _msg in ws:
        pass
    return ws


async def main():
    app = web.Application()
    app.router.add_post("/r/{key}", card)
    app.router.add_get("/ws", listen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with FakeSlackWebAPI() as fake:
        print(fake.base_url, flush=True)
        print("http://127.0.0.1:%d" % runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()

asyncio.run(main())
"""


class FakeInOtherProcess:
    """The fake Slack in its own process, so its work does not share the measured event loop."""

    bot_token = DEFAULT_BOT_TOKEN
    signing_secret = DEFAULT_SIGNING_SECRET

    def __init__(self) -> None:
        self.payloads = SlackPayloads()
        self.base_url = ""
        self.cards_url = ""  # stands for Slack's response_url endpoint
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
        self.cards_url = (await self._proc.stdout.readline()).decode().strip()
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


async def prepare_round(core: Any, users: list[str]) -> str:
    """A round in the vote phase with every user joined and 15 ideas; returns its id."""
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
    for i, u in enumerate(users[:15]):
        f = await run_text(core, ctx(u), "contribute")
        assert f is not None
        await core.submit_form(ctx(u), f.form_id, {"text": f"idea {i}"})
    await run_text(core, ctx("U0MAYA", True), "next")
    from sqlalchemy import select

    from bot.persistence.tables import RoundRow

    async with core.sessions() as s:
        rid = await s.scalar(select(RoundRow.id))
    assert rid is not None
    return str(rid)


class Cards:
    """The cards convene posts to response_urls arrive at the fake's process (standing for Slack);
    it tells this process, over one websocket, which card came for which click and its next button."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Cards:
        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(f"{self.url}/ws")
        self._task = asyncio.create_task(self._read(ws))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        assert self._session is not None
        self._task.cancel()
        await self._session.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            key, _, action = str(msg.data).partition(" ")
            fut = self._waiting.pop(key, None)
            if fut is not None and not fut.done():
                fut.set_result(action)

    def expect(self, key: str) -> asyncio.Future[str]:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[key] = fut
        return fut


def click_body(payloads: SlackPayloads, action: str, user: str, response_url: str, on_card: bool) -> bytes:
    inbound = payloads.block_actions(
        action, action, user_id=user, user_name=user.lower(), channel_id=CHANNEL, is_ephemeral=on_card
    )
    payload = dict(inbound.payload)
    payload["response_url"] = response_url
    return payloads.interactive(payload).body


async def measure(
    url: str,
    secret: str,
    payloads: SlackPayloads,
    users: list[str],
    clicks: int,
    rid: str,
    cards: Cards | None,
) -> tuple[list[float], list[float]]:
    """Each user clicks ``clicks`` times: the ack times, and (with ``cards``) click -> next card."""
    acks: list[float] = []
    to_card: list[float] = []
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def client(user: str) -> None:
            action, on_card = f"cv:{rid}:deck", False
            for k in range(clicks):
                key = f"{user}-{k}-{time.monotonic_ns()}"
                fut = cards.expect(key) if cards is not None else None
                base = cards.url if cards is not None else "http://127.0.0.1:9"
                body = click_body(payloads, action, user, f"{base}/r/{key}", on_card)
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    **signed_headers(secret, body),
                }
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                acks.append(time.perf_counter() - t0)
                if fut is not None:
                    action = await asyncio.wait_for(fut, 10)
                    to_card.append(time.perf_counter() - t0)
                    on_card = True

        await asyncio.gather(*(client(u) for u in users))
    return acks, to_card


async def main(clients: int, clicks: int, rounds: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    users = [f"U0B{i:04d}" for i in range(clients)]
    payloads = SlackPayloads()
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
                rid = await prepare_round(app.core, users)
                await app.relay.drain()
                app.start_background()  # the relay runs while we measure, as in production
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

                results: dict[str, list[float]] = {"bare ack": [], "convene ack": [], "convene card": []}
                async with (
                    serve_aiohttp_app(web_app(convene, fake.signing_secret, PATH)) as c_url,
                    serve_aiohttp_app(bare.web_app(path=PATH)) as b_url,
                    Cards(fake.cards_url) as cards,
                ):
                    urls = {"bare": b_url + PATH, "convene": c_url + PATH}
                    secret = fake.signing_secret
                    # warm up (bolt's auth.test, connections, caches)
                    await measure(urls["bare"], secret, payloads, users, 2, rid, None)
                    await measure(urls["convene"], secret, payloads, users, 2, rid, cards)
                    freeze_startup_heap()  # as run_slack does before serving (both apps share the process)
                    for _ in range(rounds):
                        for name in ("bare", "convene"):
                            await quiesce(app, convene)
                            await asyncio.sleep(0.2)
                            answered = cards if name == "convene" else None
                            acks, to_card = await measure(
                                urls[name], secret, payloads, users, clicks, rid, answered
                            )
                            results[f"{name} ack"] += acks
                            results["convene card"] += to_card
                    await quiesce(app, convene)
                    await convene.convene_handlers.aclose()  # type: ignore[attr-defined]
                batches = app.core.ingest.batches
            finally:
                await app.aclose()  # closes the port's session too
    print(
        f"signed deck clicks, HTTP mode, {clients} concurrent voters, {clicks} clicks each, {rounds} rounds"
    )
    for name, values in results.items():
        print(
            f"{name:13s} n={len(values):5d}  p50={pct(values, 50) * 1000:7.2f} ms  "
            f"p99={pct(values, 99) * 1000:7.2f} ms  mean={statistics.fmean(values) * 1000:7.2f} ms"
        )
    base = pct(results["bare ack"], 99)
    print(f"p99 ratio convene ack / bare ack = {pct(results['convene ack'], 99) / base:.2f} (goal <= 1.5)")
    print(
        f"p99 ratio convene click -> next card / bare ack = {pct(results['convene card'], 99) / base:.2f}"
        f" (goal <= 1.5); ballot batches committed: {batches}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.clicks, args.rounds))
