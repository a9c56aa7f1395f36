"""One round linked to a Slack channel and a Discord channel, where every voter votes on every idea
through the private deck, driven as the platforms drive the adapters: signed Slack requests through
slack-bolt (answers through response_urls), discord.py through the fake gateway (answers as
interaction callbacks). Shared by ``test_deck_round.py`` (small) and ``benchmarks/deck_round.py``
(200 ideas, 50 voters).

Setting the round up (start, link, join, contribute) goes through the core directly, as the
adapters' own tests cover those paths; every vote goes through an adapter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adapters.discord.runner import make_client as make_discord_client
from adapters.slack.app import create_bolt_app, web_app
from adapters.slack.port import SlackChatPort, make_client
from bot.app import App, build_app
from bot.config import parse_config
from bot.domain.commands import Context
from bot.keys import MemoryKeyStore
from bot.persistence.tables import OutboxRow, RoundRow
from bot.ports import FixedClock
from bot.refs import ConversationRef, Platform, UserRef
from bot.service.textcmd import run_text
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import FakeDiscord
from tests.platform_fakes.discord_client import running_client
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI, SlackClientSim, serve_aiohttp_app

SLACK_CHANNEL = "C0DECK"
PATH = "/slack/events"
CHOICES = ("Agree", "Disagree", "Pass")
RESULT = re.compile(r"Idea (\d+)\W.*?(\d+) agree, (\d+) disagree, (\d+) pass")


@dataclass
class Figures:
    ideas: int
    voters: int
    clicks: int = 0
    seconds: float = 0.0
    cast: Counter[tuple[int, str]] = field(default_factory=Counter)
    published: dict[str, Counter[tuple[int, str]]] = field(default_factory=dict)  # per platform
    public_during_voting: dict[str, int] = field(default_factory=dict)  # per channel
    public_while_clicking: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)  # voters told "voted on every idea", per platform
    click_to_card: dict[str, list[float]] = field(default_factory=dict)  # seconds, per platform

    @property
    def limit(self) -> int:
        return 2 + math.ceil(self.ideas / 20)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class Round:
    """The app, both fakes and both adapters, running."""

    def __init__(self, app: App, slack: FakeSlackWebAPI, sim: SlackClientSim, discord: FakeDiscord) -> None:
        self.app = app
        self.slack = slack
        self.sim = sim
        self.discord = discord
        self.guild = discord.guild
        self.channel = discord.channel
        self._n = 0

    # contexts as the adapters build them ------------------------------------------------------
    def ctx(self, platform: str, user: str, *, convener: bool = False) -> Context:
        self._n += 1
        if platform == "slack":
            team = self.slack.workspace.team_id
            return Context(
                UserRef(Platform.SLACK, team, user, user.lower()),
                ConversationRef(Platform.SLACK, team, SLACK_CHANNEL),
                request_id=f"setup:{self._n}",
                is_convener=convener,
            )
        gid = str(self.guild["id"])
        return Context(
            UserRef(Platform.DISCORD, gid, user, user),
            ConversationRef(Platform.DISCORD, gid, str(self.channel["id"])),
            request_id=f"setup:{self._n}",
            is_convener=convener,
        )

    async def form(self, ctx: Context, text: str, values: dict[str, str]) -> None:
        form = await run_text(self.app.core, ctx, text)
        assert form is not None, text
        await self.app.core.submit_form(ctx, form.form_id, values)

    # public writes, per channel ---------------------------------------------------------------
    def public_writes(self) -> dict[str, int]:
        slack = [
            c
            for c in self.slack.calls()
            if c.method in ("chat.postMessage", "chat.update") and c.get("channel") == SLACK_CHANNEL
        ]
        cid = str(self.channel["id"])
        discord = [
            c
            for c in self.discord.calls
            if c.status < 300
            and c.route
            in ("POST /channels/{channel_id}/messages", "PATCH /channels/{channel_id}/messages/{message_id}")
            and c.path.split("/")[2] == cid
        ]
        return {"slack": len(slack), "discord": len(discord)}

    def published(self) -> dict[str, Counter[tuple[int, str]]]:
        slack_text = "\n".join(slack_seen(c.blocks).text for c in self.slack.calls("chat.postMessage"))
        cid = str(self.channel["id"])
        discord_text = "\n".join(
            m["content"] for m in self.discord.channel_messages(cid) if not m["flags"] & p.FLAG_EPHEMERAL
        )
        out = {}
        for platform, text in (("slack", slack_text), ("discord", discord_text)):
            tally: Counter[tuple[int, str]] = Counter()
            for line in text.splitlines():
                if m := RESULT.search(line.replace("*", "")):  # Discord's bold markers
                    idea, agree, disagree, passes = map(int, m.groups())
                    tally.update(
                        {(idea, "agree"): agree, (idea, "disagree"): disagree, (idea, "pass"): passes}
                    )
            out[platform] = +tally
        return out

    # voting through the adapters --------------------------------------------------------------
    async def slack_voter(self, user: str, rng: random.Random, fig: Figures) -> None:
        deck, action = next(
            (m, action_id)
            for m in reversed(self.slack.messages(SLACK_CHANNEL))
            for _label, action_id in slack_seen(m.get("blocks")).buttons
            if action_id.endswith(":deck")
        )
        before = {m["ts"] for m in self.slack.ephemerals(SLACK_CHANNEL, user)}
        inbound = self.slack.payloads.block_actions(
            action, action, user_id=user, user_name=user.lower(), channel_id=SLACK_CHANNEL,
            message_ts=deck["ts"], message=deck,
        )  # fmt: skip
        await self.sim.send(inbound)

        def opened() -> bool:
            return any(m["ts"] not in before for m in self.slack.ephemerals(SLACK_CHANNEL, user))

        await self.slack.wait_until(opened, 10, "a deck card")
        ts = next(m["ts"] for m in self.slack.ephemerals(SLACK_CHANNEL, user) if m["ts"] not in before)

        def card() -> dict[str, Any]:
            return next(m for m in self.slack.ephemerals(SLACK_CHANNEL, user) if m["ts"] == ts)

        while True:
            now = card()
            seen = slack_seen(now.get("blocks"))
            votes = {k: v for k, v in seen.action_ids.items() if k in CHOICES}
            if not votes:
                fig.done["slack"] = fig.done.get("slack", 0) + ("voted on every idea" in seen.text)
                return
            choice = rng.choice(CHOICES)
            idea = int(votes[choice].split(":")[3])
            inbound = self.slack.payloads.block_actions(
                votes[choice], votes[choice], user_id=user, user_name=user.lower(),
                channel_id=SLACK_CHANNEL, message_ts=ts, message=now, is_ephemeral=True,
            )  # fmt: skip
            shown = _json(now["blocks"])
            t0 = time.perf_counter()
            resp = await self.sim.send(inbound)
            assert resp.status == 200, resp
            await self.slack.wait_until(lambda was=shown: _json(card()["blocks"]) != was, 10, "the next card")
            fig.click_to_card.setdefault("slack", []).append(time.perf_counter() - t0)
            fig.cast[(idea, choice.lower())] += 1
            fig.clicks += 1

    async def discord_voter(self, user: p.JSON, rng: random.Random, fig: Figures) -> None:
        cid = str(self.channel["id"])
        deck = next(
            m
            for m in reversed(self.discord.channel_messages(cid))
            if ":deck" in _json(m.get("components")) and not m["flags"] & p.FLAG_EPHEMERAL
        )
        action = next(
            c["custom_id"]
            for row in deck["components"]
            for c in row["components"]
            if c["custom_id"].endswith(":deck")
        )
        rec = await self.discord.interact(self.discord.click(action, deck, user=user))
        await rec.callback(timeout=10)
        assert rec.original is not None
        card_id = rec.original["id"]
        while True:
            card = self.discord.messages[card_id]
            buttons = {c["label"]: c["custom_id"] for row in card["components"] for c in row["components"]}
            votes = {k: v for k, v in buttons.items() if k in CHOICES}
            if not votes:
                fig.done["discord"] = fig.done.get("discord", 0) + ("voted on every idea" in card["content"])
                return
            choice = rng.choice(CHOICES)
            idea = int(votes[choice].split(":")[3])
            rec = await self.discord.interact(self.discord.click(votes[choice], card, user=user))
            body = await rec.callback(timeout=10)
            assert body["type"] == 7, body
            fig.click_to_card.setdefault("discord", []).append(rec.attempts[0].at - rec.dispatched_at)
            fig.cast[(idea, choice.lower())] += 1
            fig.clicks += 1


async def play(
    tmp: Path,
    *,
    ideas: int,
    voters: int,
    concurrency: int = 10,
    seed: int = 1,
    progress: Callable[[str], Awaitable[None] | None] | None = None,
) -> Figures:
    """Play the round; returns what was measured (assertions are the caller's)."""
    rng = random.Random(seed)
    per_voter = math.ceil(ideas / voters)
    slack_users = [f"U0V{i:04d}" for i in range(voters // 2)]
    gid = p.snowflake()
    owner = p.user(username="owner")
    discord_users = [p.user(username=f"voter{i}") for i in range(voters - len(slack_users))]
    guild = p.guild(
        gid,
        owner_id=owner["id"],
        channels=[p.text_channel(name="goals", guild_id=gid)],
        members=[p.member(u) for u in (owner, *discord_users)],
    )
    fig = Figures(ideas, voters)
    async with FakeSlackWebAPI() as slack, FakeDiscord(guilds=[guild]) as discord_fake:
        with discord_fake.patch_discord():
            config = parse_config(
                {
                    "database": {"url": f"sqlite+aiosqlite:///{tmp / 'deck.db'}"},
                    "rounds": {"contributions_per_participant": max(3, per_voter), "sector_min_voters": 2},
                    "slack": {"enabled": True, "mode": "http", "api_base_url": slack.base_url},
                    "discord": {"enabled": True, "conveners": {"user_ids": [owner["id"]]}},
                    "outbox": {"poll_seconds": 0.05},
                }
            )
            slack_port = SlackChatPort(make_client(slack.bot_token, slack.base_url))
            from adapters.discord.runner import make_port

            discord_port = make_port()
            clock = FixedClock(dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC))
            app = await build_app(
                config, {"slack": slack_port, "discord": discord_port}, keys=MemoryKeyStore(), clock=clock
            )
            app.start_background()
            bolt = create_bolt_app(
                app.core, config.slack, client=make_client(slack.bot_token, slack.base_url),
                signing_secret=slack.signing_secret,
            )  # fmt: skip
            client = make_discord_client(app, config.discord, guild_ready_timeout=0.01)
            try:
                async with (
                    serve_aiohttp_app(web_app(bolt, slack.signing_secret, PATH)) as base,
                    SlackClientSim(base + PATH, slack.signing_secret) as sim,
                    running_client(discord_fake, client),
                ):
                    r = Round(app, slack, sim, discord_fake)
                    await _setup(r, slack_users, discord_users, owner, ideas, per_voter)
                    before = r.public_writes()
                    await run_text(app.core, r.ctx("slack", "U0CONVENER", convener=True), "next")
                    await _settle(r, bolt)
                    released = r.public_writes()
                    sem = asyncio.Semaphore(concurrency)
                    started = time.perf_counter()

                    async def one(vote: Awaitable[None]) -> None:
                        async with sem:
                            await vote

                    voting = [
                        *(r.slack_voter(u, random.Random(rng.random()), fig) for u in slack_users),
                        *(r.discord_voter(u, random.Random(rng.random()), fig) for u in discord_users),
                    ]
                    await asyncio.gather(*(one(v) for v in voting))
                    fig.seconds = time.perf_counter() - started
                    await _settle(r, bolt)
                    after = r.public_writes()
                    fig.public_during_voting = {k: after[k] - before[k] for k in after}
                    fig.public_while_clicking = {k: after[k] - released[k] for k in after}
                    await run_text(app.core, r.ctx("slack", "U0CONVENER", convener=True), "next")
                    await _settle(r, bolt)
                    fig.published = r.published()
            finally:
                await bolt.convene_handlers.aclose()  # type: ignore[attr-defined]
                await app.aclose()
    return fig


async def _setup(
    r: Round, slack_users: list[str], discord_users: list[p.JSON], owner: p.JSON, ideas: int, per_voter: int
) -> None:
    core = r.app.core
    convener = r.ctx("slack", "U0CONVENER", convener=True)
    await r.form(
        convener,
        "start",
        {"title": "Deck round", "purpose": "Every idea, every voter", "template": "standard"},
    )
    async with r.app.sessions() as s:
        code = await s.scalar(select(RoundRow.join_code))
    await run_text(core, r.ctx("discord", owner["id"], convener=True), f"link {code}")
    people = [("slack", u) for u in slack_users] + [("discord", str(u["id"])) for u in discord_users]
    for platform, user in people:
        await r.form(r.ctx(platform, user), "join", {"sector": "resident"})
    n = 0
    for platform, user in people:
        for _ in range(per_voter):
            if n == ideas:
                break
            n += 1
            await r.form(
                r.ctx(platform, user), "contribute", {"text": f"Proposal number {n}: a distinct idea"}
            )
    await r.app.relay.drain()


async def _settle(r: Round, bolt: Any) -> None:
    """Until every listener is done and the outbox is empty (the background relay included)."""
    await bolt.convene_handlers.wait_idle()
    while True:
        await r.app.relay.drain()
        async with r.app.sessions() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status.in_(["pending", "in_flight"]))
            )
        if not left:
            return
        await asyncio.sleep(0.02)
