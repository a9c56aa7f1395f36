"""The outbox relay under crashes, outages and several workers, on SQLite and PostgreSQL.

What people would notice: a post shown twice, a post missing, posts out of order, a card showing an
older state than the round is in, a channel silent for minutes behind a picture, a channel whose
posts were dropped during an outage."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import OutboxConfig
from bot.messages import Message, Part
from bot.persistence.tables import ConversationRow, OutboxRow, RoundRow
from bot.ports import Clock, DeliveryError, FixedClock, SystemClock
from bot.prompts import PromptKey
from bot.service import workers
from bot.service.outbox import private_row, public_row, requeue_conversation, take_stalls
from bot.service.relay import OutboxRelay
from tests.core import story
from tests.harness import Harness, make_harness
from tests.relay.platform import FilePlatform

ROOT = Path(__file__).resolve().parents[2]


def idea(n: int, note: str = "") -> Message:
    return Message((Part(PromptKey.RELEASE_IDEA, {"label": n, "mine": None, "text": f"idea {n}{note}"}),))


def numbers(texts: list[str]) -> list[int]:
    return [int(m.group(1)) for t in texts for m in [re.search(r"idea (\d+)", t)] if m]


@dataclass
class World:
    """A round linked to a Slack and a Discord channel, whose own relay has stopped: each test
    brings the relays (the processes) it needs."""

    h: Harness
    round_id: str
    convs: list[ConversationRow]
    relays: list[OutboxRelay] = field(default_factory=list)

    def relay(self, platform: FilePlatform, clock: Clock | None = None, **config: object) -> OutboxRelay:
        relay = OutboxRelay(
            self.h.app.sessions,
            platform.ports(),
            self.h.app.relay.prompts,
            clock or self.h.clock,
            OutboxConfig(**config),  # type: ignore[arg-type]
        )
        self.relays.append(relay)
        return relay

    async def queue(self, numbers: range, convs: list[ConversationRow] | None = None) -> None:
        """Public posts as a release writes them: idea by idea, to every channel."""
        async with self.h.app.sessions() as s, s.begin():
            for n in numbers:
                for conv in convs or self.convs:
                    s.add(public_row(self.round_id, conv, idea(n)))

    async def queue_card(self, version: int, conv: ConversationRow | None = None) -> None:
        async with self.h.app.sessions() as s, s.begin():
            s.add(public_row(self.round_id, conv or self.convs[0], idea(0, f" v{version}"), slot="card"))

    async def queue_private(self, n: int, who: str = "maya") -> None:
        ctx = self.h.driver.context(self.h.person(who))
        async with self.h.app.sessions() as s, s.begin():
            s.add(private_row(ctx, idea(n, " (private)"), self.round_id))

    async def add_channels(self, n: int) -> list[ConversationRow]:
        async with self.h.app.sessions() as s, s.begin():
            convs = [
                ConversationRow(
                    id=f"c{i}",
                    round_id=self.round_id,
                    platform="slack",
                    workspace_id="T-city-hall",
                    channel_id=f"C-extra-{i}",
                )
                for i in range(n)
            ]
            s.add_all(convs)
        return convs

    async def statuses(self) -> dict[str, int]:
        async with self.h.app.sessions() as s:
            rows = await s.execute(select(OutboxRow.status, OutboxRow.seq))
            out: dict[str, int] = {}
            for status, _ in rows:
                out[status] = out.get(status, 0) + 1
            return out

    async def scalar(self, sql: str) -> object:
        return await self.h.scalar(sql)


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    h = await make_harness(engine)
    rid = await story.start(h)
    await story.link_discord(h)
    await h.app.relay.aclose()  # set-up done: from here on, each test's relays deliver
    async with h.app.sessions() as s:
        # Slack's channel first: convs[0].
        convs = list(await s.scalars(select(ConversationRow).order_by(ConversationRow.platform.desc())))
    w = World(h, rid, convs)
    yield w
    for relay in w.relays:
        await relay.aclose()
    await h.close()


async def until_in_flight(w: World) -> None:
    while not await w.scalar("select count(*) from outbox where status = 'in_flight'"):  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def channel_of(w: World, platform: str) -> str:
    return next(c.channel_id for c in w.convs if c.platform == platform)


# --- a crash repeats at most the post in flight --------------------------------------------------


async def test_each_delivery_is_recorded_before_the_next_post_of_its_channel(world: World) -> None:
    w = world
    await w.queue(range(1, 9))

    async def recorded_so_far(platform: str, channel: str) -> None:
        shown = len([e for e in fake.shown if e["channel"] == channel and e["kind"] == "post"])
        async with w.h.app.sessions() as s:
            sent = await s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.channel_id == channel, OutboxRow.status == "sent", OutboxRow.slot.is_(None))
            )
        assert sent == shown, "a post went out while the previous one was not recorded yet"

    fake = FilePlatform(before=recorded_so_far)
    assert await w.relay(fake).drain() == 16
    assert numbers(fake.posts(channel_of(w, "slack"))) == list(range(1, 9))


def run_child(db_url: str, log: Path, kill_after: int, worker_id: str | None = None) -> None:
    """A relay in its own process, SIGKILLed right after the platform accepted its kill_after-th delivery."""
    args = [sys.executable, "-m", "tests.relay.crash_child", db_url, str(log), str(kill_after)]
    child = subprocess.run(
        [*args, *([worker_id] if worker_id else [])], cwd=ROOT, timeout=60, capture_output=True
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]


async def until_gone(w: World, worker_id: str, timeout: float = 10.0) -> None:
    """Until the database knows the killed worker is gone, as it does before any restart: at once on
    SQLite (the kernel drops the flock with the process); on PostgreSQL once the server's backend
    for the killed process has read its closed socket and exited, dropping its advisory lock, which
    under load takes a moment."""
    if w.h.app.engine.dialect.name != "postgresql":
        return
    held = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :a AND objid = :b"
        " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    params = {"a": workers.WORKER_LOCK_CLASS, "b": workers.worker_key(worker_id)}
    async with asyncio.timeout(timeout):
        while True:
            async with w.h.app.engine.connect() as conn:
                if not await conn.scalar(held, params):
                    return
            await asyncio.sleep(0.02)


async def dead_worker(w: World) -> str:
    """The worker id the killed process held its rows under."""
    owners = await w.scalar("select count(distinct claimed_by) from outbox where status = 'in_flight'")
    assert owners == 1, owners
    return str(await w.scalar("select min(claimed_by) from outbox where status = 'in_flight'"))


@pytest.mark.parametrize("kill_after", [3, 14])
async def test_a_crash_repeats_at_most_the_post_in_flight_and_the_restart_takes_back_its_rows_at_once(
    world: World, db_url: str, tmp_path: Path, kill_after: int, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    await w.queue(range(1, 13))
    for n in range(100, 106):
        await w.queue_private(n)
    log = tmp_path / "platform.jsonl"
    run_child(db_url, log, kill_after)
    held = await w.scalar("select count(*) from outbox where status = 'in_flight'")
    assert held, "the process died holding rows"
    dead = await dead_worker(w)
    await until_gone(w, dead)

    caplog.set_level(logging.INFO, "convene.relay")
    fake = FilePlatform(log)
    before = len(fake.shown)
    assert before == kill_after
    started = asyncio.get_running_loop().time()
    relay = w.relay(fake, SystemClock())  # same host, the slot is free again: the same worker id
    assert await relay.start() == dead, "another relay identity is still held in this process or database"
    await relay.drain()
    assert asyncio.get_running_loop().time() - started < 5, "no waiting for the 60 s lease"
    assert "took back" in caplog.text
    assert "lease ran out" not in caplog.text
    assert await w.statuses() == {"sent": 2 * 12 + 1 + 1}  # the ideas and the two round cards

    for channel in (channel_of(w, "slack"), channel_of(w, "discord")):
        got = numbers(fake.posts(channel))
        repeats = [a for a, b in itertools.pairwise(got) if a == b]
        assert len(repeats) <= 1, f"more than the post in flight was repeated: {got}"
        assert [n for i, n in enumerate(got) if i == 0 or got[i - 1] != n] == list(range(1, 13))
    privates = numbers([e["text"] for e in fake.shown if e["kind"] == "private"])
    assert sorted(set(privates)) == list(range(100, 106))
    repeated = len(fake.shown) - (2 * 12 + 6)
    # At most one per lane in flight at the kill (the child runs 4 lanes), and each re-sent row logged.
    assert repeated <= 4
    assert caplog.text.count("re-sending outbox row") >= repeated


async def test_a_worker_gone_is_taken_over_by_another_at_once_on_postgres_else_after_its_lease(
    world: World, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    await w.queue(range(1, 7))
    log = tmp_path / "platform.jsonl"
    run_child(db_url, log, 2, worker_id="worker-a")
    await until_gone(w, "worker-a")
    fake = FilePlatform(log)
    clock = FixedClock(dt.datetime.now(dt.UTC))
    other = w.relay(fake, clock, worker_id="worker-b")
    caplog.set_level(logging.INFO, "convene.relay")
    if w.h.app.engine.dialect.name == "postgresql":
        await other.drain()  # the dead worker's advisory lock went with its connection
        assert "it is gone" in caplog.text
    else:
        # SQLite cannot tell another worker is gone: its rows wait out their lease.
        await other.drain()
        assert await w.scalar("select count(*) from outbox where status = 'in_flight'")
        clock.advance(seconds=61)
        await other.drain()
        assert "lease ran out" in caplog.text
    assert await w.scalar("select count(*) from outbox where status <> 'sent'") == 0
    for channel in (channel_of(w, "slack"), channel_of(w, "discord")):
        got = numbers(fake.posts(channel))
        assert [n for i, n in enumerate(got) if i == 0 or got[i - 1] != n] == list(range(1, 7))


async def test_a_live_worker_keeps_its_rows_and_one_stalled_past_its_lease_gives_them_up(
    world: World,
) -> None:
    w = world
    await w.queue(range(1, 5), [w.convs[0]])
    fake = FilePlatform()
    fake.gate = asyncio.Event()  # the first worker's post hangs at the platform
    first = w.relay(fake, worker_id="worker-a")
    second = w.relay(fake, worker_id="worker-b")
    hung = asyncio.create_task(first.run_once())
    await until_in_flight(w)
    assert await second.run_once() == 0, "a conversation in flight with a live worker is not claimed"
    w.h.clock.advance(seconds=61)  # the first worker stalled past its lease (no heartbeat ran)
    gate = fake.gate
    fake.gate = None
    assert await second.run_once() == 4
    gate.set()
    await hung
    got = numbers(fake.posts())
    assert sorted(set(got)) == [1, 2, 3, 4]
    assert len(got) == 5, "only the post the stalled worker had at the platform shows twice"
    assert got[-1] == 1


async def test_an_older_edit_of_a_slot_never_lands_after_a_newer_one(world: World) -> None:
    w = world
    fake = FilePlatform()
    await w.queue_card(1)
    await w.relay(fake, worker_id="worker-a").drain()
    [posted] = [e for e in fake.shown if "v1" in e["text"]]
    # The card is edited; the worker delivering the edit dies with it in flight.
    await w.queue_card(2)
    fake.gate = asyncio.Event()
    dying = w.relay(fake, worker_id="worker-b")
    in_flight = asyncio.create_task(dying.run_once())
    await until_in_flight(w)
    in_flight.cancel()  # killed: nothing more runs, nothing is recorded, its lock goes with it
    assert dying.identity is not None
    await dying.identity.release()
    fake.gate = None
    await w.queue_card(3)
    await w.queue_card(4)
    await w.relay(fake, worker_id="worker-b").drain()  # its restart, at once
    assert fake.card(posted["message_id"]).endswith("v4")
    w.h.clock.advance(hours=1)
    await w.relay(fake, worker_id="worker-c").drain()
    assert fake.card(posted["message_id"]).endswith("v4"), "the card never goes back to an older state"
    edits = [e["text"][-2:] for e in fake.shown if e["kind"] == "edit"]
    assert edits == ["v4"], "the stale edit and the ones it would have overtaken were coalesced"
    assert len([e for e in fake.shown if e["kind"] == "post"]) == 1


# --- several workers on one database ---------------------------------------------------------------


async def test_two_relays_keep_each_conversations_order_and_edit_slots_not_repost_them(world: World) -> None:
    w = world
    convs = [*w.convs, *(await w.add_channels(4))]
    fake = FilePlatform(latency=0.001)
    relays = [w.relay(fake), w.relay(fake)]
    assert len({await r.start() for r in relays}) == 2
    stop = asyncio.Event()
    running = [asyncio.create_task(r.run_forever(stop)) for r in relays]
    try:
        for batch in range(6):
            await w.queue(range(batch * 10 + 1, batch * 10 + 11), convs)
            for conv in convs:
                await w.queue_card(batch, conv)  # "post once, then edit", whichever worker gets it
            for r in relays:
                r.wake()
            await asyncio.sleep(0.02)
        async with asyncio.timeout(60):
            while await w.scalar("select count(*) from outbox where status in ('pending', 'in_flight')"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        for r in relays:
            r.wake()
        await asyncio.gather(*running)
    assert fake.overlaps == 0, "two workers delivered to one channel at once"
    for conv in convs:
        assert [n for n in numbers(fake.posts(conv.channel_id)) if n] == list(range(1, 61))
        cards = [e for e in fake.shown if e["channel"] == conv.channel_id and re.search(r" v\d$", e["text"])]
        assert [e["kind"] for e in cards].count("post") == 1, "an edit became a second card"
        assert fake.card(cards[0]["message_id"]).endswith("v5")


# --- pictures and outages --------------------------------------------------------------------------


async def test_a_failed_picture_goes_as_text_and_holds_the_channel_back_no_longer(world: World) -> None:
    pytest.importorskip("matplotlib")
    w = world
    chart = Message(
        (Part(PromptKey.CHART, {}),),
        chart={
            "labels": [1, 2],
            "gac": [0.5, 0.9],
            "urgency": [3, None],
            "impact": [4, 2],
            "common_ground": [0, 1],
        },
    )
    async with w.h.app.sessions() as s, s.begin():
        s.add(public_row(w.round_id, w.convs[0], chart))
    await w.queue(range(1, 4), [w.convs[0]])
    fake = FilePlatform()
    fake.fail_images = True
    assert await w.relay(fake).drain() == 4  # one pass each, no clock moved: nothing waited
    shown = fake.shown
    assert [e["image"] for e in shown] == [False] * 4
    assert "urgency" in shown[0]["text"]
    assert numbers(fake.posts())[-3:] == [1, 2, 3]
    fake.fail_images = False
    async with w.h.app.sessions() as s, s.begin():
        s.add(public_row(w.round_id, w.convs[0], chart))
    await w.relay(fake).drain()
    assert shown[-1]["image"]


async def test_public_posts_retry_for_the_life_of_the_round_and_private_replies_expire(world: World) -> None:
    w = world
    await w.queue(range(1, 4), [w.convs[0]])
    await w.queue_private(100)
    fake = FilePlatform()
    relay = w.relay(fake)
    fake.errors["slack"] = [DeliveryError("HTTP 503") for _ in range(40)]
    for _ in range(20):  # hours of outage
        await relay.drain()
        w.h.clock.advance(seconds=400)
    assert await w.statuses() == {"sent": 2, "pending": 3, "failed": 1}
    assert await w.scalar("select max(attempts) from outbox where status = 'pending'") > 8
    assert await w.scalar("select body from outbox where status = 'failed'") in ("{}", {})
    fake.errors["slack"].clear()
    w.h.clock.advance(seconds=400)
    await relay.drain()
    assert numbers(fake.posts()) == [1, 2, 3]
    assert await w.statuses() == {"sent": 5, "failed": 1}


async def test_public_posts_give_up_a_day_after_their_round_ended(world: World) -> None:
    w = world
    await w.queue(range(1, 2), [w.convs[0]])
    async with w.h.app.sessions() as s, s.begin():
        rnd = await s.get(RoundRow, w.round_id)
        assert rnd is not None
        rnd.phase = "closed"
    fake = FilePlatform()
    fake.errors["slack"] = [DeliveryError("HTTP 503") for _ in range(1000)]
    relay = w.relay(fake)
    for _ in range(23):
        await relay.drain()
        w.h.clock.advance(hours=1)
    assert await w.statuses() == {"sent": 2, "pending": 1}
    for _ in range(3):
        await relay.drain()
        w.h.clock.advance(hours=1)
    assert await w.statuses() == {"sent": 2, "failed": 1}


async def test_a_client_not_connected_costs_no_attempt(world: World) -> None:
    w = world
    await w.queue(range(1, 3))
    await w.queue_private(100, "ade")
    fake = FilePlatform()
    fake.errors["discord"] = [DeliveryError("not connected", offline=True) for _ in range(30)]
    relay = w.relay(fake)
    for _ in range(3):
        await relay.drain()
        w.h.clock.advance(seconds=2)
        await asyncio.sleep(1.05)  # the relay asks a disconnected platform again after a second
    assert await w.scalar("select max(attempts) from outbox") == 0
    assert numbers(fake.posts(channel_of(w, "slack"))) == [1, 2]
    fake.errors["discord"].clear()
    await asyncio.sleep(1.0)
    await relay.drain()
    assert numbers(fake.posts(channel_of(w, "discord"))) == [1, 2]
    assert await w.statuses() == {"sent": 6}


async def test_a_stalled_channel_is_reported_once_and_its_posts_requeued(world: World) -> None:
    w = world
    await w.queue(range(1, 4))
    fake = FilePlatform()
    fake.errors["discord"] = [DeliveryError("HTTP 503")] * 100
    relay = w.relay(fake)
    after = dt.timedelta(minutes=w.h.app.config.outbox.stall_minutes)
    for _ in range(4):
        await relay.drain()
        w.h.clock.advance(minutes=2)
        async with w.h.app.sessions() as s, s.begin():
            assert await take_stalls(s, w.h.clock.now(), after=after) == []
    await relay.drain()
    w.h.clock.advance(minutes=3)
    async with w.h.app.sessions() as s, s.begin():
        [stall] = await take_stalls(s, w.h.clock.now(), after=after)
    discord = next(c for c in w.convs if c.platform == "discord")
    assert (stall.round_id, stall.conversation_id, stall.platform) == (w.round_id, discord.id, "discord")
    assert numbers(fake.posts(channel_of(w, "slack"))) == [1, 2, 3]
    async with w.h.app.sessions() as s, s.begin():
        assert await take_stalls(s, w.h.clock.now(), after=after) == [], "reported once"
    fake.errors["discord"].clear()
    async with w.h.app.sessions() as s, s.begin():
        assert await requeue_conversation(s, w.round_id, discord.id) == 1
    await relay.drain()
    assert numbers(fake.posts(channel_of(w, "discord"))) == [1, 2, 3]
    assert await w.statuses() == {"sent": 8}
