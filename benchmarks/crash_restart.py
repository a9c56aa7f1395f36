# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Crash and restart: `convene run` SIGKILLed again and again during a whole round on both platforms.

`convene run` runs as a real subprocess (Slack in HTTP mode, Discord over the gateway) against the
local fake Slack and fake Discord (tests/platform_fakes, in this process). A round is played as
people would: a convener starts it on Slack and links a Discord channel, people join and contribute
on both, the ideas are released, every voter votes on every idea, the votes are tallied, a goal and
an action are set, a Discord user takes the action, and the round closes. Meanwhile the process is
killed with SIGKILL (20 times by default): right after the release, the tally, the take and the
close (while the relay posts them), and at random moments while people vote. Each time it is
restarted at once. People do what people do: a click that got no answer is clicked again.

Printed figures:
- acknowledged votes lost: votes whose voter was told "recorded" (Slack: the ephemeral naming the
  idea; Discord: the follow-up to that click) but which are not in the stored tally;
- duplicate public posts per platform (the same post shown twice in a channel), and repeated
  private replies;
- the longest a public post waited because of a kill: from the kill until it was delivered;
- restart to answering again: from the restart until both a signed Slack request is acknowledged
  and a Discord interaction is answered.

    .venv/bin/python benchmarks/crash_restart.py [--database-url postgresql://postgres@127.0.0.1/test]
        [--kills 20] [--voters 50] [--ideas 10] [--seed 1]

With --database-url on PostgreSQL the run uses a database of its own on that server (created, then
dropped); the one named is never touched. Without it, a SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import os
import random
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.persistence.db import make_engine, normalise_url
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import FakeDiscord, InteractionRecord
from tests.platform_fakes.slack import FakeSlackWebAPI, SlackClientSim, SlackInbound

T = TypeVar("T")
CHANNEL = "C0GENERAL"
CONVENER = "U0MAYA"
PATH = "/slack/events"
SECTORS = ["public_sector", "business", "civil_society", "resident", "academia"]
UNSENT_PUBLIC = "select seq from outbox where visibility = 'public' and status in ('pending', 'in_flight')"


@dataclasses.dataclass
class Figures:
    kills: int = 0
    votes_intended: int = 0
    votes_acknowledged: int = 0
    votes_stored: int = 0
    votes_lost: int = 0  # acknowledged, not stored
    votes_extra: int = 0  # stored, never meant
    slack_posts: int = 0
    slack_duplicates: int = 0
    discord_posts: int = 0
    discord_duplicates: int = 0
    private_repeats: int = 0
    order_breaks: int = 0
    held: list[float] = dataclasses.field(default_factory=list)  # per kill: longest public post wait
    restarts: list[float] = dataclasses.field(default_factory=list)  # per restart: to answering
    took_back: int = 0  # restarts that logged taking back rows
    resent: int = 0  # rows logged as re-sent
    tracebacks: int = 0
    seconds: float = 0.0

    def report(self, db: str) -> str:
        held = max(self.held) if self.held else 0.0
        ready = max(self.restarts) if self.restarts else 0.0
        med = statistics.median(self.restarts) if self.restarts else 0.0
        return "\n".join(
            [
                f"crash/restart on {db}: {self.kills} SIGKILLs of `convene run` (Slack HTTP + Discord"
                f" gateway), each restarted at once; {self.seconds:.0f} s",
                f"  votes: {self.votes_intended} cast, {self.votes_acknowledged} acknowledged, "
                f"{self.votes_stored} stored: {self.votes_lost} acknowledged votes lost (goal 0), "
                f"{self.votes_extra} stored that nobody cast",
                f"  public posts: Slack {self.slack_posts} with {self.slack_duplicates} duplicates "
                f"(goal <= 1), Discord {self.discord_posts} with {self.discord_duplicates} duplicates "
                f"(goal 0); {self.order_breaks} order breaks in releases",
                f"  private replies repeated: {self.private_repeats}",
                f"  longest a public post was held back by a kill: {held:.1f} s (goal <= 10)",
                f"  restart to answering on both platforms: median {med:.1f} s, max {ready:.1f} s "
                "(goal <= 5)",
                f"  relay log: {self.took_back} restarts took rows back, {self.resent} rows re-sent; "
                f"{self.tracebacks} tracebacks",
            ]
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def retry(action: Callable[[], Awaitable[T | None]], *, timeout: float = 60.0, pause: float = 0.1) -> T:
    """``action()`` until it returns something, as a person clicks again."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            got = await action()
            if got is not None:
                return got
        if time.monotonic() > deadline:
            raise TimeoutError("no answer")
        await asyncio.sleep(pause)


# --- the process under test ------------------------------------------------------------------------


class Convene:
    """`convene run` as a subprocess, killed and restarted."""

    def __init__(self, config: Path, env: dict[str, str], logs: Path) -> None:
        self.config = config
        self.env = env
        self.logs = logs
        self.proc: asyncio.subprocess.Process | None = None
        self.incarnation = 0

    async def start(self) -> None:
        self.incarnation += 1
        log = (self.logs / f"run-{self.incarnation:02d}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "run",
            "--config",
            str(self.config),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                await self.kill()

    def log_text(self) -> str:
        return "\n".join(f.read_text(errors="replace") for f in sorted(self.logs.glob("run-*.log")))


# --- the platforms, played as people would ----------------------------------------------------------


class Slack:
    def __init__(self, fake: FakeSlackWebAPI, url: str) -> None:
        self.fake = fake
        self.sim = SlackClientSim(url, fake.signing_secret, timeout=5)
        self.names: dict[str, str] = {}
        self._ephemerals: dict[str, list[str]] = {}
        self._read = 0

    async def send(self, inbound: SlackInbound) -> bool:
        resp = await self.sim.send(inbound)
        return resp.status == 200

    async def command(self, uid: str, text: str) -> SlackInbound:
        inbound = self.fake.payloads.slash_command(
            text=text, user_id=uid, user_name=self.names.get(uid, uid.lower()), channel_id=CHANNEL
        )
        await retry(lambda: self._sent(inbound))
        return inbound

    async def _sent(self, inbound: SlackInbound) -> bool | None:
        return True if await self.send(inbound) else None

    async def view_for(self, trigger: str | None, timeout: float = 5.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.fake.calls("views.open"):
                if call.get("trigger_id") == trigger and call.ok:
                    view = call.view
                    assert isinstance(view, dict)
                    return view
            await asyncio.sleep(0.02)
        return None

    async def submit(self, uid: str, view: dict[str, Any], values: dict[str, str]) -> bool:
        kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
        state: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            kind = kinds.get(name, "plain_text_input")
            if kind == "static_select":
                v: Any = {"type": kind, "selected_option": {"value": value} if value else None}
            elif kind == "datepicker":
                v = {"type": kind, "selected_date": value or None}
            else:
                v = {"type": "plain_text_input", "value": value}
            state[name] = {name: v}
        inbound = self.fake.payloads.view_submission(
            view["callback_id"],
            state,
            private_metadata=view["private_metadata"],
            user_id=uid,
            user_name=self.names.get(uid, uid.lower()),
            blocks=view["blocks"],
        )
        return await self.send(inbound)

    async def form(
        self, uid: str, command: str, values: dict[str, str], *, button: str | None = None
    ) -> None:
        """A slash command (or a button) that opens a modal, then its submission; again if lost."""

        async def once() -> bool | None:
            if button:
                inbound = self.fake.payloads.block_actions(
                    button,
                    button,
                    user_id=uid,
                    user_name=self.names.get(uid, uid.lower()),
                    channel_id=CHANNEL,
                )
                if not await self.send(inbound):
                    return None
            else:
                inbound = await self.command(uid, command)
            view = await self.view_for(inbound.trigger_id)
            if view is None:
                return None
            return True if await self.submit(uid, view, values) else None

        await retry(once)

    def ephemerals(self, uid: str) -> list[str]:
        """Texts of the ephemerals this person was shown, read once each (voters poll this)."""
        new = self.fake.calls_since(self._read)
        self._read += len(new)
        for c in new:
            if c.method == "chat.postEphemeral" and c.ok:
                self._ephemerals.setdefault(str(c.get("user")), []).append(str(c.get("text")))
        return self._ephemerals.get(uid, [])

    def buttons(self, pattern: str) -> list[str]:
        out = []
        for msg in self.fake.messages(CHANNEL):
            for block in msg.get("blocks", []):
                for el in block.get("elements", []) if block["type"] == "actions" else []:
                    if re.search(pattern, el["action_id"]):
                        out.append(el["action_id"])
        return out


class Discord:
    def __init__(self, fake: FakeDiscord, users: dict[str, p.JSON]) -> None:
        self.fake = fake
        self.users = users

    async def interact(self, payload: p.JSON, timeout: float = 4.0) -> InteractionRecord | None:
        try:
            rec = await self.fake.interact(payload)
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return None  # no gateway connection (the process was killed, or is starting)
        try:
            await rec.callback(timeout=timeout)
        except TimeoutError:
            return None
        return rec

    async def followed_up(self, rec: InteractionRecord, timeout: float = 4.0) -> bool:
        try:
            await rec.wait_followups(1, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def slash(self, who: str, sub: str, options: dict[str, Any] | None = None) -> None:
        async def once() -> bool | None:
            rec = await self.interact(self.fake.slash("convene", sub, options, user=self.users[who]))
            return True if rec is not None and await self.followed_up(rec) else None

        await retry(once)

    async def form(self, who: str, button: str, values: dict[str, Any]) -> None:
        async def once() -> bool | None:
            rec = await self.interact(self.fake.click(button, user=self.users[who]))
            if rec is None or rec.response is None or rec.response["type"] != 9:
                return None
            custom_id = rec.response["data"]["custom_id"]
            sub = await self.interact(self.fake.submit_modal(custom_id, values, user=self.users[who]))
            return True if sub is not None and await self.followed_up(sub) else None

        await retry(once)

    def public(self) -> list[p.JSON]:
        cid = str(self.fake.channel["id"])
        return [
            m
            for m in self.fake.channel_messages(cid)
            if m["author"]["id"] == self.fake.bot_user["id"]
            and not m.get("interaction_metadata")
            and m.get("webhook_id") is None
        ]


def discord_world(voters: int) -> tuple[list[p.JSON], dict[str, p.JSON]]:
    gid = p.snowflake()
    users = {"owner": p.user(username="owner", global_name="Octavia"), "probe": p.user(username="probe")}
    for i in range(voters):
        users[f"d{i}"] = p.user(username=f"voter{i}", global_name=f"Voter {i}")
    guild = p.guild(
        gid,
        owner_id=users["owner"]["id"],
        channels=[p.text_channel(name="general", guild_id=gid)],
        members=[p.member(u) for u in users.values()],
    )
    return [guild], users


# --- the run ---------------------------------------------------------------------------------------


class Run:
    def __init__(self, url: str, workdir: Path, *, kills: int, voters: int, ideas: int, seed: int) -> None:
        self.url = url
        self.workdir = workdir
        self.kills = kills
        self.voters = voters
        self.ideas = ideas
        self.rng = random.Random(seed)
        self.figures = Figures()
        self.engine: AsyncEngine = make_engine(url)
        self.watchers: list[asyncio.Task[float]] = []
        self._messages: dict[str, p.JSON] = {}

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(await conn.execute(text(sql), params))

    # -- killing and restarting

    async def answering(self) -> float:
        """Restart to answering on both platforms (seconds)."""
        started = time.monotonic()

        async def slack_ok() -> bool | None:
            inbound = self.fake_slack.payloads.slash_command(
                text="help", user_id="U0PROBE", channel_id=CHANNEL
            )
            return True if await self.slack.send(inbound) else None

        async def discord_ok() -> bool | None:
            await self.fake_discord.wait_connected(timeout=30)
            rec = await self.discord.interact(
                self.fake_discord.slash("convene", "help", user=self.users["probe"]), 1.0
            )
            return True if rec is not None else None

        await asyncio.gather(retry(slack_ok, pause=0.05), retry(discord_ok, pause=0.05))
        return time.monotonic() - started

    async def kill_and_restart(self) -> None:
        if self.figures.kills >= self.kills:
            return
        await self.convene.kill()
        killed = time.monotonic()
        self.figures.kills += 1
        waiting = [r[0] for r in await self.rows(UNSENT_PUBLIC)]
        await self.convene.start()
        self.watchers.append(asyncio.create_task(self.held_back(waiting, killed)))
        self.figures.restarts.append(await self.answering())

    async def held_back(self, seqs: list[int], killed: float) -> float:
        """How long the public posts waiting at a kill took to go out."""
        longest = 0.0
        left = set(seqs)
        while left:
            done = await self.rows(
                "select seq from outbox where status not in ('pending', 'in_flight') and seq in ("
                + ",".join(str(s) for s in left)
                + ")"
            )
            for (seq,) in done:
                left.discard(seq)
                longest = time.monotonic() - killed
            if time.monotonic() - killed > 120:
                return 120.0
            await asyncio.sleep(0.05)
        return longest

    async def kill_soon(self, within: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, within))
        await self.kill_and_restart()

    async def delivered(self, timeout: float = 60) -> None:
        """Until every public post is out (people see the release before voting on it)."""

        async def done() -> bool | None:
            return None if await self.rows(UNSENT_PUBLIC) else True

        await retry(done, timeout=timeout, pause=0.05)

    async def phase(self) -> str:
        return str(await self.scalar("select phase from rounds"))

    async def advance(self, to: str) -> None:
        """The convener's `/convene next`, again until the round moved."""

        async def once() -> bool | None:
            if await self.phase() == to:
                return True
            await self.slack.command(CONVENER, "next")
            for _ in range(50):
                if await self.phase() == to:
                    return True
                await asyncio.sleep(0.05)
            return None

        await retry(once)

    # -- votes

    async def vote(self, who: str, number: int, choice: str) -> bool:
        action = f"cv:{self.round_id}:v:{number}:{choice}"
        for _attempt in range(40):
            if who.startswith("U0"):
                marker = f"Idea {number} is recorded"
                before = sum(marker in e for e in self.slack.ephemerals(who))
                inbound = self.fake_slack.payloads.block_actions(
                    action, action, user_id=who, user_name=who.lower(), channel_id=CHANNEL
                )
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    if await self.slack.send(inbound):
                        deadline = time.monotonic() + 4
                        while time.monotonic() < deadline:
                            if sum(marker in e for e in self.slack.ephemerals(who)) > before:
                                return True
                            await asyncio.sleep(0.05)
            else:
                message = self.release_message(action)
                if message is not None:
                    rec = await self.discord.interact(
                        self.fake_discord.click(action, message, user=self.users[who])
                    )
                    if rec is not None and await self.discord.followed_up(rec):
                        return True
            await asyncio.sleep(0.2)
        return False

    def release_message(self, action: str) -> p.JSON | None:
        """The post carrying a vote button (looked up once: the fake keeps every message)."""
        if action not in self._messages:
            found = self.fake_discord.find_message(action)
            if found is None:
                return None
            self._messages[action] = found
        return self._messages[action]

    async def voter(self, who: str, choices: dict[int, str], pace: float) -> None:
        numbers = list(choices)
        self.rng.shuffle(numbers)
        for n in numbers:
            await asyncio.sleep(self.rng.uniform(0, 2 * pace))
            if await self.vote(who, n, choices[n]):
                self.figures.votes_acknowledged += 1

    async def killer(self, kills: int, stop: asyncio.Event) -> None:
        for _ in range(kills):
            try:
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.8, 2.0))
                return
            except TimeoutError:
                await self.kill_and_restart()

    # -- the round

    async def play(self) -> Figures:
        started = time.monotonic()
        guilds, self.users = discord_world(self.voters)
        slack_users = [f"U0S{i:03d}" for i in range(self.voters - self.voters // 2)]
        discord_users = [f"d{i}" for i in range(self.voters // 2)]
        async with FakeSlackWebAPI() as fake_slack, FakeDiscord(guilds=guilds) as fake_discord:
            self.fake_slack, self.fake_discord = fake_slack, fake_discord
            port = free_port()
            config = self.workdir / "config.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "database": {"url": self.url},
                        "anonymity": {"key_dir": str(self.workdir / "keys")},
                        "rounds": {"sector_min_voters": 2},
                        "slack": {
                            "enabled": True,
                            "mode": "http",
                            "http": {"host": "127.0.0.1", "port": port, "path": PATH},
                            "api_base_url": fake_slack.base_url + "/",
                            "conveners": {"user_ids": [CONVENER]},
                        },
                        "discord": {
                            "enabled": True,
                            "api_base_url": fake_discord.rest_base,
                            "gateway_url": fake_discord.gateway_url,
                            "conveners": {"user_ids": [self.users["owner"]["id"]]},
                        },
                    }
                )
            )
            env = {
                **os.environ,
                "SLACK_BOT_TOKEN": fake_slack.bot_token,
                "SLACK_SIGNING_SECRET": fake_slack.signing_secret,
                "DISCORD_TOKEN": fake_discord.token,
                "CONVENE_KEK": base64.b64encode(os.urandom(32)).decode(),
            }
            logs = self.workdir / "logs"
            logs.mkdir()
            self.convene = Convene(config, env, logs)
            self.slack = Slack(fake_slack, f"http://127.0.0.1:{port}{PATH}")
            self.discord = Discord(fake_discord, self.users)
            await self.convene.start()
            try:
                await self.answering()
                async with asyncio.timeout(900):  # never hang silently: a stuck run says so
                    await self.round(slack_users, discord_users)
                await self.delivered()
                for w in self.watchers:
                    self.figures.held.append(await w)
            finally:
                await self.convene.stop()
                await self.slack.sim.close()
            self.count_posts(slack_users)
        text_log = self.convene.log_text()
        self.figures.took_back = text_log.count("took back")
        self.figures.resent = text_log.count("re-sending outbox row")
        self.figures.tracebacks = text_log.count("Traceback")
        self.figures.seconds = time.monotonic() - started
        await self.engine.dispose()
        return self.figures

    async def round(self, slack_users: list[str], discord_users: list[str]) -> None:
        slack, discord = self.slack, self.discord
        await slack.form(
            CONVENER,
            "start",
            {"title": "Safer streets", "purpose": "Goals for our streets", "template": "standard"},
        )
        self.round_id = str(await self.scalar("select id from rounds"))
        code = str(await self.scalar("select join_code from rounds"))
        await discord.slash("owner", "link", {"code": code})
        await self.delivered()
        contributors = slack_users[: self.ideas // 2] + discord_users[: self.ideas - self.ideas // 2]
        for uid in slack_users:
            await slack.form(uid, "join", {"sector": self.rng.choice(SECTORS)})
        for who in discord_users:
            await discord.form(who, f"cv:{self.round_id}:join", {"sector": [self.rng.choice(SECTORS)]})
        for i, who in enumerate(contributors):
            idea = f"Idea text {i}: make the streets safer in way {i}"
            if who.startswith("U0"):
                await slack.form(who, "contribute", {"text": idea})
            else:
                await discord.form(who, f"cv:{self.round_id}:contribute", {"text": idea})
        ideas = int(await self.scalar("select count(*) from ideas"))

        # Release, killed while it is being posted.
        await self.advance("vote")
        await self.kill_soon(0.3)
        await self.delivered()

        # Votes, with kills at random moments.
        people = slack_users + discord_users
        choices = {who: {n: self.rng.choice("adp") for n in range(1, ideas + 1)} for who in people}
        self.figures.votes_intended = sum(len(c) for c in choices.values())
        in_votes = max(0, self.kills - 4)
        stop = asyncio.Event()
        killer = asyncio.create_task(self.killer(in_votes, stop))
        pace = max(0.2, in_votes * 3.5 / max(1, ideas))
        await asyncio.gather(*(self.voter(who, choices[who], pace) for who in people))
        stop.set()
        await killer
        words = {"a": "agree", "d": "disagree", "p": "pass"}
        intended = Counter((n, words[c]) for per in choices.values() for n, c in per.items())
        stored = Counter(
            {
                (int(n), str(c)): int(k)
                for n, c, k in await self.rows(
                    "select idea_number, choice, count(*) from ballots where choice is not null"
                    " group by idea_number, choice"
                )
            }
        )
        self.figures.votes_stored = sum(stored.values())
        self.figures.votes_lost = sum(max(0, k - stored[key]) for key, k in intended.items())
        self.figures.votes_extra = sum(max(0, k - intended[key]) for key, k in stored.items())

        # The tally (results and chart), killed while it is being posted.
        await self.advance("goals")
        await self.kill_soon(0.3)
        await self.delivered()
        goal = {
            "idea": "1",
            "title": "Safe routes",
            "outcome": "Children walk safely",
            "metric": "Schools",
            "unit": "schools",
            "baseline": "4",
            "target": "32",
            "deadline": "2027-09-01",
            "pilot": "no",
        }
        await slack.form(CONVENER, "", goal, button=slack.buttons(r":goal:\d+$")[0])
        await self.advance("actions")
        await self.delivered()
        await slack.form(
            CONVENER, "action 1", {"goal": "1", "title": "Map the routes", "owner": "", "due": "2027-01-31"}
        )
        await self.delivered()
        # "I'll take this" on Discord: the action card is edited in both channels, then a kill.
        await self.take(discord_users[0])
        await self.kill_soon(0.1)
        await self.delivered()
        # The close and its summary, killed while it is being posted.
        await retry(self.close)
        await self.kill_soon(0.3)
        await self.delivered()

    async def take(self, who: str) -> None:
        action = f"cv:{self.round_id}:take:1"

        async def once() -> bool | None:
            owner = await self.scalar("select owner_name from actions")
            if owner:
                return True
            message = self.fake_discord.find_message(action)
            if message is None:
                return None
            rec = await self.discord.interact(self.fake_discord.click(action, message, user=self.users[who]))
            return True if rec is not None and await self.discord.followed_up(rec) else None

        await retry(once)

    async def close(self) -> bool | None:
        if await self.phase() == "closed":
            return True
        await self.slack.command(CONVENER, "close")
        for _ in range(50):
            if await self.phase() == "closed":
                return True
            await asyncio.sleep(0.05)
        return None

    def count_posts(self, slack_users: list[str]) -> None:
        f = self.figures
        posts = [c for c in self.fake_slack.calls("chat.postMessage") if c.ok and c.get("channel") == CHANNEL]
        keys = [json.dumps(c.blocks, sort_keys=True) + str(c.get("text")) for c in posts]
        shares = list(self.fake_slack.files(CHANNEL))
        f.slack_posts = len(posts) + len(shares)
        f.slack_duplicates = (
            len(keys) - len(set(keys)) + len(shares) - len({bytes(s.data or b"") for s in shares})
        )
        public = self.discord.public()
        dkeys = [
            json.dumps([m["content"], m["components"], len(m["attachments"])], sort_keys=True) for m in public
        ]
        f.discord_posts = len(public)
        f.discord_duplicates = len(dkeys) - len(set(dkeys))
        # Release order: idea numbers as the channel shows them, first appearance only.
        for texts in ([str(c.get("text")) for c in posts], [m["content"] for m in public]):
            seen: list[int] = []
            for t in texts:
                for n in re.findall(r"Idea (\d+)\b", t):
                    if int(n) not in seen:
                        seen.append(int(n))
            f.order_breaks += sum(1 for a, b in itertools.pairwise(seen) if b < a)
        repeats = 0
        for uid in slack_users:
            texts = self.slack.ephemerals(uid)
            repeats += sum(k - 1 for k in Counter(t for t in texts if "is recorded" in t).values())
        for rec in self.fake_discord.interactions.values():
            repeats += max(0, len(rec.followups) - 1)
        f.private_repeats = repeats


@contextlib.asynccontextmanager
async def database(url: str | None, workdir: Path) -> AsyncIterator[str]:
    """A fresh database: a SQLite file, or a database of this run's own on the PostgreSQL server."""
    if not url:
        yield f"sqlite+aiosqlite:///{workdir / 'convene.db'}"
        return
    u = make_url(normalise_url(url))
    if u.get_backend_name() != "postgresql":
        yield url
        return
    import asyncpg

    name = f"convene_crash_{os.getpid()}"
    admin = u.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield u.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def measure(url: str | None, *, kills: int, voters: int, ideas: int, seed: int) -> tuple[Figures, str]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with database(url, workdir) as db:
            run = Run(db, workdir, kills=kills, voters=voters, ideas=ideas, seed=seed)
            figures = await run.play()
        backend = make_url(normalise_url(db)).get_backend_name()
    return figures, backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (a database of the run's own on it)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--ideas", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    figures, backend = asyncio.run(
        measure(args.database_url, kills=args.kills, voters=args.voters, ideas=args.ideas, seed=args.seed)
    )
    print(figures.report(backend))


if __name__ == "__main__":
    main()
