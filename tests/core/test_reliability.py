"""A restart loses nothing and duplicates nothing: the outbox across a crash, deadlines across
downtime, ballots committed in batches, platform retries handled once."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain import commands as c
from bot.keys import KeyStoreUnreachable, MemoryKeyStore
from bot.messages import Rendered
from bot.ports import DeliveryError
from bot.refs import ConversationRef
from bot.service.relay import OutboxRelay
from bot.service.scheduler import DeadlineScheduler
from tests.core import story
from tests.harness import Harness, make_harness


async def start_without_delivery(h: Harness) -> None:
    """Start a round through the core alone: its messages are committed, not yet delivered."""
    ctx = h.driver.context(h.person("maya"))
    form = await h.app.core.open_form(ctx, "start")
    assert form is not None
    await h.app.core.submit_form(
        ctx, form.form_id, {"title": "Safer streets", "purpose": "Goals for streets"}
    )


class CrashingPort:
    """Stands for a process killed mid-delivery: raises before anything reaches the platform."""

    def __init__(self, platform: object) -> None:
        self.platform = platform

    def escape(self, text: str) -> str:
        return text

    async def post(self, *args: object, **kwargs: object) -> str:
        raise asyncio.CancelledError  # the task dies with the process

    edit = post_private = send_direct = post


async def test_outbox_survives_a_crash_between_commit_and_delivery(engine) -> None:  # type: ignore[no-untyped-def]
    keys = MemoryKeyStore()
    first = await make_harness(engine, keys=keys)
    await start_without_delivery(first)  # committed: the round card and the convener's reply
    # Crash 1: committed, never claimed. Crash 2: claimed (in flight), then the process died.
    crashing = OutboxRelay(
        first.app.sessions,
        {"slack": CrashingPort("slack")},
        first.app.relay.prompts,
        first.clock,  # type: ignore[dict-item]
    )
    try:
        await crashing.run_once()
    except asyncio.CancelledError:
        pass
    assert await first.scalar("select count(*) from outbox where status = 'in_flight'") == 2
    await first.app.core.ingest.aclose()
    assert crashing.identity is not None
    await crashing.identity.release()  # what the kernel does when the process dies

    # Restart: a fresh app on the same database takes the same worker id and its rows, at once.
    second = await make_harness(engine, keys=keys, clock=first.clock)
    await second.app.relay.drain()
    await second.app.relay.drain()  # and again: nothing is sent twice
    shown = second.shown("slack")
    assert [i.kind for i in shown].count("post") == 1  # the round card, once
    assert [i.kind for i in shown].count("private") == 1  # the join code, once
    assert await second.scalar("select count(*) from outbox where status <> 'sent'") == 0
    await second.close()


class FlakyPort:
    def __init__(self, errors: list[DeliveryError]) -> None:
        self.platform = "slack"
        self.errors = errors
        self.delivered: list[str] = []

    def escape(self, text: str) -> str:
        return text

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(message.text)
        return f"m{len(self.delivered)}"

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, handle: str | None
    ) -> None:
        await self.post(to, message)


async def test_relay_honours_retry_after_and_never_retries_a_permanent_error(harness: Harness) -> None:
    h = harness
    await start_without_delivery(h)
    port = FlakyPort([DeliveryError("ratelimited", retry_after=30)])
    relay = OutboxRelay(h.app.sessions, {"slack": port}, h.app.relay.prompts, h.clock)  # type: ignore[dict-item]
    await relay.run_once()
    # The card hit a 429; the private join code is not held up by it.
    assert [t.split("\n")[0] for t in port.delivered] == ["Your round has started. Only you can see this."]
    h.clock.advance(seconds=10)
    await relay.drain()
    assert len(port.delivered) == 1  # Retry-After not over yet
    h.clock.advance(seconds=30)
    await relay.drain()
    assert len(port.delivered) == 2
    await h.app.core.handle(c.Status(h.driver.context(h.person("maya"))))
    port.errors = [DeliveryError("invalid_auth", permanent=True)]
    await relay.drain()
    h.clock.advance(hours=1)
    await relay.drain()
    assert len(port.delivered) == 2
    assert await h.scalar("select count(*) from outbox where status = 'failed'") == 1
    assert await h.scalar("select body from outbox where status = 'failed'") in ("{}", {})
    await relay.aclose()


async def test_a_deadline_passed_while_down_fires_exactly_once(engine) -> None:  # type: ignore[no-untyped-def]
    keys = MemoryKeyStore()
    h = await make_harness(engine, keys=keys)
    await story.start(h, contribute_minutes="10")
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)
    await h.app.core.ingest.aclose()  # the process goes down before the deadline

    await h.app.relay.aclose()
    h2 = await make_harness(engine, keys=keys, clock=h.clock)
    h2.clock.advance(days=2)
    schedulers = [DeadlineScheduler(h2.app.core), DeadlineScheduler(h2.app.core)]
    fired = await asyncio.gather(*(s.run_once() for s in schedulers))
    assert sum(fired) == 1
    assert await DeadlineScheduler(h2.app.core).run_once() == 0
    assert await h2.scalar("select phase from rounds") == "vote"
    await h2.app.relay.drain()
    headers = [i for i in h2.shown() if "voting is open" in i.text]
    assert len(headers) == 2  # one release in each linked channel
    await h2.close()


async def test_a_convener_advancing_early_makes_the_deadline_a_no_op(harness: Harness) -> None:
    h = harness
    await story.start(h, contribute_minutes="10")
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)
    await h.driver.command(h.person("maya"), "next")
    h.clock.advance(minutes=11)
    assert await DeadlineScheduler(h.app.core).run_once() == 0
    assert await h.scalar("select phase from rounds") == "vote"


async def test_ballots_from_many_concurrent_clicks_share_commits(harness: Harness) -> None:
    h = harness
    rid = await story.to_vote(h)
    people = [h.driver.people[name] for name, _p, _s in story.PEOPLE]
    clicks = [
        c.CastBallot(h.driver.context(p), rid, idea, choice)
        for p in people
        for idea in range(1, 5)
        for choice in ("disagree", "agree")  # each person changes their mind: the later click wins
    ]
    before = h.app.core.ingest.batches
    await asyncio.gather(*(h.app.core.handle(click) for click in clicks))
    assert h.app.core.ingest.batches - before < len(clicks) / 4
    assert await h.scalar("select count(*) from ballots") == len(people) * 4
    assert await h.scalar("select count(*) from ballots where choice = 'agree'") == len(people) * 4


async def test_a_platform_retry_of_the_same_request_is_handled_once(harness: Harness) -> None:
    h = harness
    rid = await story.to_vote(h)
    raj = h.driver.people["raj"]
    ctx = c.Context(raj.ref, h.driver.context(raj).where, request_id="slack:evt-1")
    await h.app.core.handle(c.CastBallot(ctx, rid, 1, "agree"))
    await h.app.core.handle(c.CastBallot(ctx, rid, 1, "disagree"))  # same request id: a redelivery
    assert await h.scalar("select choice from ballots") == "agree"
    maya = h.driver.people["maya"]
    mctx = c.Context(maya.ref, h.driver.context(maya).where, request_id="slack:evt-2", is_convener=True)
    await h.app.core.handle(c.Advance(mctx))
    await h.app.core.handle(c.Advance(mctx))
    assert await h.scalar("select phase from rounds") == "goals"


async def test_two_racing_next_clicks_move_the_round_once(harness: Harness) -> None:
    h = harness
    if h.app.engine.dialect.name == "sqlite":
        # SQLite runs one writer at a time, so two "next" are two turns, not a race.
        pytest.skip("a true race needs concurrent writers (PostgreSQL)")
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)
    maya, ade = h.driver.people["maya"], h.driver.people["ade"]
    await asyncio.gather(
        h.app.core.handle(c.Advance(h.driver.context(maya))),
        h.app.core.handle(c.Advance(h.driver.context(ade))),
    )
    assert await h.scalar("select phase from rounds") == "vote"


async def test_a_button_from_another_channels_round_is_refused(harness: Harness) -> None:
    h = harness
    rid = await story.start(h)
    stranger = h.person("zed", "discord")  # the Discord channel is not linked to this round
    await h.app.core.press(h.driver.context(stranger), f"cv:{rid}:join")
    await h.app.relay.drain()
    assert "no longer exists here" in h.privates("zed")[-1]
    assert await h.scalar("select count(*) from participants") == 0


async def test_outcomes_are_recorded_as_soon_as_the_platform_accepts(harness: Harness) -> None:
    h = harness
    await start_without_delivery(h)
    assert await h.app.relay.run_once() == 1  # the console delivers one lane at a time: the card
    assert await h.scalar("select count(*) from outbox where status = 'in_flight'") == 0
    assert await h.scalar("select count(*) from message_slots") == 1
    assert await h.app.relay.run_once() == 1  # the private join code
    assert await h.scalar("select count(*) from outbox where visibility = 'private'") == 0
    assert await h.scalar("select status from outbox") == "sent"
    assert await h.scalar("select count(*) from message_slots") == 1


class UnreachableKeys(MemoryKeyStore):
    """A shared key store that can be cut off (a sealed or unreachable Vault)."""

    down = False

    def get(self, round_id: str) -> bytes | None:
        if self.down:
            raise KeyStoreUnreachable("the key store is unreachable")
        return super().get(round_id)


async def test_a_deadline_that_cannot_reach_its_round_key_waits_and_fires_later(engine, caplog) -> None:  # type: ignore[no-untyped-def]
    keys = UnreachableKeys()
    h = await make_harness(engine, keys=keys)
    await story.start(h, vote_minutes="10")
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)
    await h.driver.command(h.person("maya"), "next")
    await story.vote(h, "raj", 1, "Agree")
    await h.app.core.ingest.aclose()

    # Another worker, with nothing cached, while the key store is down: the tally needs the key.
    h2 = await make_harness(engine, keys=keys, clock=h.clock)
    keys.down = True
    h2.clock.advance(minutes=11)
    scheduler = DeadlineScheduler(h2.app.core)
    assert await scheduler.run_once() == 0
    assert await h2.scalar("select phase from rounds") == "vote"
    assert await h2.scalar("select count(*) from timers where status = 'pending'") == 1
    assert "round key is unreachable; retrying" in caplog.text
    keys.down = False
    assert await scheduler.run_once() == 0  # held back for a pause, not hammered
    h2.clock.advance(seconds=31)
    assert await scheduler.run_once() == 1
    assert await h2.scalar("select phase from rounds") == "goals"
    assert await h2.scalar("select count(*) from timers where status = 'pending'") == 0
    await h2.app.core.ingest.aclose()
