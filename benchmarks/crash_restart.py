# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Crash and restart: `convene run` SIGKILLed again and again during a whole round on both platforms.

`convene run` runs as a real subprocess (Slack in HTTP mode, Discord over the gateway) against the
local fake Slack and fake Discord (tests/platform_fakes, in this process). A round is played as
people would: a convener starts it on Slack and links a Discord channel, people join and contribute
on both, the ideas are released, every voter votes on every idea through the voting deck (the
"Vote" button of the release opens a private card; each choice is answered with the next card, which
says the vote is recorded: on Slack through the click's response_url, on Discord as the interaction's
callback), the votes are tallied, a goal and an action are set, a Discord user takes the action, and
the round closes. Meanwhile the process is killed with SIGKILL (20 times by default): right after the
release, the tally, the take and the close (while the relay posts them), and at random moments while
people vote. Each time it is restarted at once. People do what people do: a click that got no answer
(no next card) is clicked again, from the card still shown.

Printed figures:
- acknowledged votes lost: votes whose voter saw a card say "Your vote on Idea n is recorded" (or,
  for a click pressed again, that it already was) but which are not in the stored tally; and votes
  stored that nobody cast;
- clicks pressed again because their answer never came, and of those, votes found already recorded;
- duplicate public posts per platform (the same post shown twice in a channel), and repeated
  private replies (through the outbox; the probe's help is left out);
- the longest a public post waited because of a kill: from the kill until it was delivered;
- restart to answering again: from the restart until both a signed Slack request is acknowledged
  and a Discord interaction is answered.

    .venv/bin/python benchmarks/crash_restart.py [--database-url postgresql://postgres@127.0.0.1/test]
        [--kills 20] [--voters 50] [--ideas 10] [--seed 1] [--limit 1800]

With --database-url on PostgreSQL the run uses a database of its own on that server (created, then
dropped); the one named is never touched. Without it, a SQLite file in a temporary folder. A run
that has not finished after --limit seconds fails, saying where it stalled and where each voter was.
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
from collections.abc import Awaitable, Callable, Iterable
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

from benchmarks.databases import fresh_database
from bot.persistence.db import make_engine, normalise_url
from tests.platform_fakes import discord_payloads as p
from tests.platform_fakes.discord import FakeDiscord, InteractionRecord
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI, SlackClientSim, SlackInbound

T = TypeVar("T")
CHANNEL = "C0GENERAL"
CONVENER = "U0MAYA"
PROBE = "U0PROBE"  # asks for help after each restart, to time it
PATH = "/slack/events"
SECTORS = ["public_sector", "business", "civil_society", "resident", "academia"]
UNSENT_PUBLIC = "select seq from outbox where visibility = 'public' and status in ('pending', 'in_flight')"
WORDS = {"a": "agree", "d": "disagree", "p": "pass"}
# What the next card says of the vote just cast (prompts/en/vote/deck_notice.j2): recorded, or, for
# a click pressed again after its answer was lost, recorded already.
ACKNOWLEDGED = re.compile(r"Your vote on Idea (\d+) (?:is recorded|was already recorded)")
ALREADY = re.compile(r"Your vote on Idea (\d+) was already recorded")
ANSWER_WAIT = 5.0  # how long a voter waits for the next card before pressing again
DECK_BUTTON = re.compile(r"^cv:[^:]+:(?:v|dk):")
VOTE_BUTTON = re.compile(r"^cv:[^:]+:v:(\d+):(c?)([adp]):")


@dataclasses.dataclass(frozen=True)
class Card:
    """A voting deck card as its voter sees it now: ``key`` (Slack: its ts; Discord: its message id),
    its text and its buttons (label -> id). Two reads are equal when nothing on it changed."""

    key: str
    text: str
    buttons: dict[str, str]
    raw: dict[str, Any] = dataclasses.field(compare=False, repr=False)

    def idea(self) -> int | None:
        """The idea on the card (None: the card that says every idea is voted on)."""
        return next((int(m[1]) for i in self.buttons.values() if (m := VOTE_BUTTON.match(i))), None)

    def vote(self, choice: str) -> str:
        """The button for ``choice`` on an idea not voted on yet; on one voted on already (not
        expected), the button that moves on."""
        for action in self.buttons.values():
            m = VOTE_BUTTON.match(action)
            if m and not m[2] and m[3] == choice:
                return action
        return next(i for i in self.buttons.values() if re.match(r"^cv:[^:]+:dk:\d+:s:", i))


def is_card(text: str, buttons: Iterable[tuple[str, str]]) -> bool:
    """Whether a private message is a deck card (text and (label, id) of its buttons)."""
    return "voted on every idea" in text or any(DECK_BUTTON.match(i) for _label, i in buttons)


@dataclasses.dataclass
class Figures:
    kills: int = 0
    votes_intended: int = 0
    votes_acknowledged: int = 0
    votes_stored: int = 0
    votes_lost: int = 0  # acknowledged, not stored
    votes_extra: int = 0  # stored, never meant
    kills_while_voting: int = 0
    clicks_again: int = 0  # pressed again from the same card: the answer never came
    found_recorded: int = 0  # votes a card said were recorded already (a lost answer's vote was kept)
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
                f" gateway), {self.kills_while_voting} of them while people voted, each restarted at once;"
                f" {self.seconds:.0f} s",
                f"  votes: {self.votes_intended} cast, {self.votes_acknowledged} acknowledged, "
                f"{self.votes_stored} stored: {self.votes_lost} acknowledged votes lost (goal 0), "
                f"{self.votes_extra} stored that nobody cast (goal 0)",
                f"  deck clicks pressed again (no answer came): {self.clicks_again}; votes then found "
                f"recorded already: {self.found_recorded}",
                f"  public posts: Slack {self.slack_posts} with {self.slack_duplicates} duplicates "
                f"(goal <= 1 per kill), Discord {self.discord_posts} with {self.discord_duplicates} "
                f"duplicates (goal 0); {self.order_breaks} order breaks in releases",
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
        return await self.send(self.submission(uid, view, values))

    def submission(self, uid: str, view: dict[str, Any], values: dict[str, str]) -> SlackInbound:
        """The view_submission of ``view`` filled in with ``values`` (one view id: send it twice and
        it is the same request twice, as a retry is)."""
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
        return self.fake.payloads.view_submission(
            view["callback_id"],
            state,
            private_metadata=view["private_metadata"],
            user_id=uid,
            user_name=self.names.get(uid, uid.lower()),
            blocks=view["blocks"],
        )

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

    def private_repeats(self) -> int:
        """Private replies (through the outbox) one person was shown twice, word for word."""
        shown = Counter(
            (str(c.get("user")), json.dumps(c.blocks, sort_keys=True) + str(c.get("text")))
            for c in self.fake.calls("chat.postEphemeral")
            if c.ok
        )
        return sum(k - 1 for (user, _), k in shown.items() if user != PROBE)

    # The voting deck: a card only its voter sees, replaced in place through each click's response_url.
    def card(self, uid: str) -> Card | None:
        """The deck card ``uid`` sees now: the newest ephemeral of theirs that is a card."""
        for message in reversed(self.fake.ephemerals(CHANNEL, uid)):
            seen = slack_seen(message.get("blocks"))
            if is_card(seen.text, seen.buttons):
                return Card(str(message["ts"]), seen.text, dict(seen.buttons), message)
        return None

    async def open_deck(self, uid: str) -> None:
        """Click "Vote" on the newest post that has it; until a card shows (or no answer came)."""
        found = next(
            (
                (m, action_id)
                for m in reversed(self.fake.messages(CHANNEL))
                for _label, action_id in slack_seen(m.get("blocks")).buttons
                if action_id.endswith(":deck")
            ),
            None,
        )
        if found is None:
            return
        message, action_id = found
        inbound = self.fake.payloads.block_actions(
            action_id, action_id, user_id=uid, user_name=uid.lower(), channel_id=CHANNEL,
            message_ts=message["ts"], message=message,
        )  # fmt: skip
        await self.answered(uid, None, inbound)

    async def press(self, uid: str, card: Card, action_id: str) -> None:
        """A button of the card ``uid`` sees; until the card changes (or this click got no answer)."""
        inbound = self.fake.payloads.block_actions(
            action_id, action_id, user_id=uid, user_name=uid.lower(), channel_id=CHANNEL,
            message_ts=card.key, message=card.raw, is_ephemeral=True,
        )  # fmt: skip
        await self.answered(uid, card, inbound)

    async def answered(self, uid: str, card: Card | None, inbound: SlackInbound) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            if not await self.send(inbound):
                return  # no acknowledgement: the process is down
            deadline = time.monotonic() + ANSWER_WAIT
            while time.monotonic() < deadline:
                if self.card(uid) != card:
                    return
                await asyncio.sleep(0.05)

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
        self.decks: dict[str, str] = {}  # who -> the id of their deck card

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
            and not m["flags"] & p.FLAG_EPHEMERAL
            and m.get("webhook_id") is None
        ]

    # The voting deck: an ephemeral card, updated in place by each click's interaction callback.
    def card(self, who: str) -> Card | None:
        """``who``'s deck card as they see it now (None: none, or it says something else)."""
        message = self.fake.messages.get(self.decks.get(who, ""))
        if message is None:
            return None
        buttons = {c["label"]: c["custom_id"] for row in message["components"] for c in row["components"]}
        if not is_card(str(message["content"]), buttons.items()):
            return None
        return Card(str(message["id"]), str(message["content"]), buttons, message)

    async def open_deck(self, who: str) -> None:
        """Click "Vote" on the newest public post that has it: the card is the answer, a new
        ephemeral message (none if no answer came)."""
        for message in reversed(self.public()):
            action = next((i for i in self.custom_ids(message) if i.endswith(":deck")), None)
            if action is not None:
                rec = await self.interact(self.fake.click(action, message, user=self.users[who]), ANSWER_WAIT)
                if rec is not None and rec.original is not None:
                    self.decks[who] = str(rec.original["id"])
                return

    async def press(self, who: str, card: Card, action_id: str) -> None:
        """A button of ``who``'s card; until the card changes (or this click got no answer)."""
        rec = await self.interact(self.fake.click(action_id, card.raw, user=self.users[who]), ANSWER_WAIT)
        if rec is None:
            return
        if rec.callback_type == 4 and rec.original is not None:  # a new card (not expected)
            self.decks[who] = str(rec.original["id"])
        with contextlib.suppress(TimeoutError):  # deferred: the card follows as an edit
            await self.fake.wait_until(lambda: self.card(who) != card or None, ANSWER_WAIT, "the next card")

    @staticmethod
    def custom_ids(message: p.JSON) -> list[str]:
        return [
            c["custom_id"] for row in message.get("components") or [] for c in row.get("components") or []
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
    def __init__(
        self, url: str, workdir: Path, *, kills: int, voters: int, ideas: int, seed: int, limit: float
    ) -> None:
        self.url = url
        self.limit = limit  # seconds for the whole round, else it fails saying where it stalled
        self.step = "the start"
        self.workdir = workdir
        self.kills = kills
        self.voters = voters
        self.ideas = ideas
        self.rng = random.Random(seed)
        self.figures = Figures()
        self.engine: AsyncEngine = make_engine(url)
        self.watchers: list[asyncio.Task[float]] = []
        self.acknowledged: Counter[tuple[int, str]] = Counter()  # (idea, choice): votes acknowledged
        self.doing: dict[str, str] = {}  # voter -> where they are (said if the run stalls)

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
            inbound = self.fake_slack.payloads.slash_command(text="help", user_id=PROBE, channel_id=CHANNEL)
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

    async def voter(self, who: str, choices: dict[int, str], pace: float) -> None:
        """Vote on every idea through the deck, as a person does: open it, press the choice for the
        idea on the card, and read the next card. A click whose answer never came (the process died)
        is pressed again from the card still shown. A vote is acknowledged when a card said it is
        recorded (or, for a click pressed again, that it already was)."""
        deck: Slack | Discord = self.slack if who.startswith("U0") else self.discord
        acknowledged: set[int] = set()
        already: set[int] = set()
        pressed: int | None = None
        for step in range(40 * (len(choices) + 1)):
            card = deck.card(who)
            self.doing[who] = f"step {step}: card {card and card.idea()} ({len(acknowledged)} acknowledged)"
            if card is None:
                await deck.open_deck(who)
                await asyncio.sleep(0.2)
                continue
            acknowledged.update(int(n) for n in ACKNOWLEDGED.findall(card.text))
            already.update(int(n) for n in ALREADY.findall(card.text))
            idea = card.idea()
            if idea is None:
                break  # "You have voted on every idea"
            if idea != pressed:  # a new card: think a little; a click that got no answer goes again
                await asyncio.sleep(self.rng.uniform(0, 2 * pace))
            else:
                self.figures.clicks_again += 1
                await asyncio.sleep(1.0)
            pressed = idea
            await deck.press(who, card, card.vote(choices[idea]))
        del self.doing[who]
        for n in acknowledged:
            self.acknowledged[(n, WORDS[choices[n]])] += 1
        self.figures.found_recorded += len(already)

    async def killer(self, kills: int, voting: asyncio.Event) -> None:
        """``kills`` kills, one every 0.8 to 2 s after the last restart: while people vote, and any
        left when the last voter is done right after (so a run always has its kills)."""
        for _ in range(kills):
            await asyncio.sleep(self.rng.uniform(0.8, 2.0))
            self.figures.kills_while_voting += voting.is_set()
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
                # Never hang silently: a stuck run says where it was.
                async with asyncio.timeout(self.limit):
                    await self.answering()
                    await self.round(slack_users, discord_users)
                    self.step = "the last public posts"
                    await self.delivered()
                    for w in self.watchers:
                        self.figures.held.append(await w)
            except TimeoutError as err:
                voting = "".join(f"\n  {who}: {doing}" for who, doing in sorted(self.doing.items()))
                stalled = f"the run stalled at {self.step} (limit {self.limit:.0f} s)"
                raise TimeoutError(stalled + voting) from err
            finally:
                for w in self.watchers:
                    w.cancel()
                await self.convene.stop()
                await self.slack.sim.close()
            self.count_posts()
        text_log = self.convene.log_text()
        self.figures.took_back = text_log.count("took back")
        self.figures.resent = text_log.count("re-sending outbox row")
        self.figures.tracebacks = text_log.count("Traceback")
        self.figures.seconds = time.monotonic() - started
        await self.engine.dispose()
        return self.figures

    async def round(self, slack_users: list[str], discord_users: list[str]) -> None:
        slack, discord = self.slack, self.discord
        self.step = "the start of the round"
        await slack.form(
            CONVENER,
            "start",
            {"title": "Safer streets", "purpose": "Goals for our streets", "template": "standard"},
        )
        self.round_id = str(await self.scalar("select id from rounds"))
        code = str(await self.scalar("select join_code from rounds"))
        self.step = "the link"
        await discord.slash("owner", "link", {"code": code})
        await self.delivered()
        contributors = slack_users[: self.ideas // 2] + discord_users[: self.ideas - self.ideas // 2]
        self.step = "the joins"
        for uid in slack_users:
            await slack.form(uid, "join", {"sector": self.rng.choice(SECTORS)})
        for who in discord_users:
            await discord.form(who, f"cv:{self.round_id}:join", {"sector": [self.rng.choice(SECTORS)]})
        self.step = "the contributions"
        for i, who in enumerate(contributors):
            idea = f"Idea text {i}: make the streets safer in way {i}"
            if who.startswith("U0"):
                await slack.form(who, "contribute", {"text": idea})
            else:
                await discord.form(who, f"cv:{self.round_id}:contribute", {"text": idea})
        ideas = int(await self.scalar("select count(*) from ideas"))

        # Release, killed while it is being posted.
        self.step = "the release"
        await self.advance("vote")
        await self.kill_soon(0.3)
        await self.delivered()

        # Votes, with kills at random moments.
        self.step = "the votes"
        people = slack_users + discord_users
        choices = {who: {n: self.rng.choice("adp") for n in range(1, ideas + 1)} for who in people}
        self.figures.votes_intended = sum(len(c) for c in choices.values())
        in_votes = max(0, self.kills - 4)
        voting = asyncio.Event()
        voting.set()
        pace = max(0.2, in_votes * 3.5 / max(1, ideas))
        killer = asyncio.create_task(self.killer(in_votes, voting))
        ballots = asyncio.gather(*(self.voter(who, choices[who], pace) for who in people))

        def over(done: asyncio.Future[Any]) -> None:
            voting.clear()
            if not done.cancelled():
                done.exception()  # raised below, if the run goes on; never "never retrieved"

        ballots.add_done_callback(over)
        try:
            # A restart that never answers fails the run now, not after every voter gave up.
            racing: set[asyncio.Future[Any]] = {killer, ballots}
            await asyncio.wait(racing, return_when=asyncio.FIRST_EXCEPTION)
            for task in racing:
                if task.done():
                    task.result()
            await ballots
            await killer
        finally:
            killer.cancel()
            ballots.cancel()
        intended = Counter((n, WORDS[c]) for per in choices.values() for n, c in per.items())
        stored = Counter(
            {
                (int(n), str(c)): int(k)
                for n, c, k in await self.rows(
                    "select idea_number, choice, count(*) from ballots where choice is not null"
                    " group by idea_number, choice"
                )
            }
        )
        self.figures.votes_acknowledged = sum(self.acknowledged.values())
        self.figures.votes_stored = sum(stored.values())
        self.figures.votes_lost = sum(max(0, k - stored[key]) for key, k in self.acknowledged.items())
        self.figures.votes_extra = sum(max(0, k - intended[key]) for key, k in stored.items())

        # The tally (results and chart), killed while it is being posted.
        self.step = "the tally"
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
        self.step = "the goal"
        await slack.form(CONVENER, "", goal, button=slack.buttons(r":goal:\d+$")[0])
        await self.advance("actions")
        await self.delivered()
        self.step = "the action"
        await slack.form(
            CONVENER, "action 1", {"goal": "1", "title": "Map the routes", "owner": "", "due": "2027-01-31"}
        )
        await self.delivered()
        # "I'll take this" on Discord: the action card is edited in both channels, then a kill.
        self.step = "the take"
        await self.take(discord_users[0])
        await self.kill_soon(0.1)
        await self.delivered()
        # The close and its summary, killed while it is being posted.
        self.step = "the close"
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

    def count_posts(self) -> None:
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
        repeats = self.slack.private_repeats()
        for rec in self.fake_discord.interactions.values():
            repeats += max(0, len(rec.followups) - 1)
        f.private_repeats = repeats


def database(url: str | None, workdir: Path) -> contextlib.AbstractAsyncContextManager[str]:
    """A fresh database: a SQLite file, or a database of this run's own on the PostgreSQL server."""
    return fresh_database(url, workdir, "crash")


async def measure(
    url: str | None, *, kills: int, voters: int, ideas: int, seed: int, limit: float = 1800
) -> tuple[Figures, str]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with database(url, workdir) as db:
            run = Run(db, workdir, kills=kills, voters=voters, ideas=ideas, seed=seed, limit=limit)
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
    parser.add_argument("--limit", type=float, default=1800, help="seconds before a stalled run fails")
    args = parser.parse_args()
    figures, backend = asyncio.run(
        measure(
            args.database_url,
            kills=args.kills,
            voters=args.voters,
            ideas=args.ideas,
            seed=args.seed,
            limit=args.limit,
        )
    )
    print(figures.report(backend))


if __name__ == "__main__":
    main()
