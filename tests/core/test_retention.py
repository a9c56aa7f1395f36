"""Retention and erasure through the core: the daily pass forgets who took part once a round has
ended, idle rounds are cancelled with their keys destroyed, and one person can be erased at any time
while what they said and voted stays, detached."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.keys import pseudonym
from bot.persistence.tables import ActionRow, BallotRow, IdeaRow, RoundRow, TimerRow
from bot.refs import Platform, UserRef
from bot.service import queries
from bot.service.handlers import retention
from tests.core import story
from tests.harness import Harness, make_harness


async def daily_pass(h: Harness) -> None:
    """What `convene run` does: the retention timer (scheduled at start-up) fires through the bus."""
    await retention.ensure_daily_pass(h.app.sessions, h.clock)
    await h.app.scheduler.run_once()
    await h.driver.settle()
    await h.app.core.services.compactor.wait()


async def pending_passes(h: Harness) -> list[dt.datetime]:
    async with h.app.sessions() as s:
        rows = await s.scalars(
            select(TimerRow.due_at).where(TimerRow.kind == queries.RETENTION, TimerRow.status == "pending")
        )
        return list(rows)


async def test_D10_the_daily_pass_forgets_who_took_part_roster_days_after_close(engine: AsyncEngine) -> None:
    h = await make_harness(engine, retention={"roster_days": 2})
    try:
        await story.to_close(h, volunteer="kim", due="2027-01-31")
        await daily_pass(h)
        assert await h.scalar("select count(*) from participants") == len(story.PEOPLE)  # not yet
        assert await pending_passes(h) == [h.clock.now() + dt.timedelta(days=1)]

        h.clock.advance(days=3)
        await daily_pass(h)
        assert await h.scalar("select count(*) from participants") == 0
        assert await h.scalar("select roster_purged from rounds")
        async with h.app.sessions() as s:
            rnd = await s.scalar(select(RoundRow))
            action = await s.scalar(select(ActionRow))
        assert rnd is not None
        # The round is still followed up (an action due 2027-01-31, a goal due 2027-09-01): its
        # conveners hear of overdue actions, and Kim stays reachable, until then.
        assert rnd.conveners != []
        assert action is not None
        assert action.owner_ref is not None
        assert action.owner_name == "Kim"
        assert await h.scalar("select count(*) from outbox") == 0  # delivered posts of the round
        assert await h.scalar("select count(*) from inbox") == 0  # request ids of three days ago
        assert await h.scalar("select count(*) from ideas") == 4  # what was said stays
        assert await h.scalar("select count(*) from ballots") == 4 * len(story.PEOPLE)
        assert len(await pending_passes(h)) == 1

        h.clock.current = dt.datetime(2027, 2, 3, 9, 0, tzinfo=dt.UTC)  # two days past due
        await daily_pass(h)
        async with h.app.sessions() as s:
            action = await s.scalar(select(ActionRow))
        assert action is not None
        assert action.owner_ref is None
        assert action.owner_name == "Kim"  # the name she chose to show stays on the record
        assert await h.scalar("select count(*) from goals where owner_ref is not null") == 1

        h.clock.current = dt.datetime(2027, 9, 4, 9, 0, tzinfo=dt.UTC)  # the goal's deadline passed too
        await daily_pass(h)
        async with h.app.sessions() as s:
            rnd = await s.scalar(select(RoundRow))
        assert rnd is not None
        assert rnd.conveners == []
        assert await h.scalar("select count(*) from goals where owner_ref is not null") == 0
    finally:
        await h.app.core.ingest.aclose()


async def test_D10_an_idle_round_is_cancelled_with_a_notice_and_its_key_shredded(engine: AsyncEngine) -> None:
    h = await make_harness(engine, retention={"idle_round_days": 5})
    try:
        rid = await story.start(h)
        await story.link_discord(h)
        await story.join_all(h)
        await story.contribute(h, "raj", "Fix potholes within a week")
        h.clock.advance(days=4)
        await daily_pass(h)
        assert await h.scalar("select phase from rounds") == "contribute"

        h.clock.advance(days=2)  # six days in the contribute phase, with no deadline
        await daily_pass(h)
        assert await h.scalar("select phase from rounds") == "cancelled"
        assert h.keys.get(rid) is None
        for platform in ("slack", "discord"):
            posts = [i.text for i in h.shown(platform) if i.kind == "post"]
            assert "nothing moved it on for 5 days" in posts[-1], posts[-1]
        assert await h.scalar("select count(*) from ideas") == 0  # never released, now discarded
        fired = "select count(*) from timers where kind = 'idle_round' and status = 'done'"
        assert await h.scalar(fired) == 1
    finally:
        await h.app.core.ingest.aclose()


async def test_a_round_with_a_deadline_ahead_or_recent_activity_is_not_idle(engine: AsyncEngine) -> None:
    h = await make_harness(engine, retention={"idle_round_days": 5})
    try:
        await story.start(h, contribute_minutes=str(60 * 24 * 30))  # a deadline in 30 days
        h.clock.advance(days=6)
        await daily_pass(h)
        assert await h.scalar("select phase from rounds") == "contribute"
    finally:
        await h.app.core.ingest.aclose()


async def test_A7_erasure_during_the_vote_detaches_ballots_and_keeps_the_count(harness: Harness) -> None:
    h = harness
    rid = await story.to_vote(h)
    for n in (1, 2):
        await story.vote(h, "raj", n, "Agree")
        await story.vote(h, "lena", n, "Disagree")
    raj = UserRef(Platform.SLACK, "T-city-hall", "U-raj")
    key = h.keys.get(rid)
    assert key is not None
    before = await h.scalar("select count(*) from ballots")
    async with h.app.sessions() as s, s.begin():
        report = await retention.erase(h.app.core.bus.unit(s, None), "slack", "U-raj")
    assert (report.roster, report.open_rounds, report.ballots_detached) == (1, 1, 2)
    assert await h.scalar("select count(*) from ballots") == before  # every vote still counts
    async with h.app.sessions() as s:
        voters = set(await s.scalars(select(BallotRow.voter_key)))
    assert pseudonym(key, raj.key()) not in voters  # nothing ties a ballot to raj any more
    assert await h.scalar("select count(*) from participants where user_id = 'U-raj'") == 0
    # Raj is out of the round: a click on the deck card he still sees is refused on that card,
    # privately, and stores nothing.
    who = h.driver.people["raj"]
    card = h.driver.card(who)
    assert card is not None
    agree = next(b for b in card.buttons if b.label == "Agree")
    await h.driver.press(who, agree)
    refused = h.driver.card(who)
    assert refused is not None
    assert "join" in refused.text.lower()
    assert await h.scalar("select count(*) from ballots") == before


async def test_A7_erasure_before_release_keeps_the_idea_unnamed(harness: Harness) -> None:
    h = harness
    rid = await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute(h, "raj", "Fix potholes within a week")
    async with h.app.sessions() as s, s.begin():
        report = await retention.erase(h.app.core.bus.unit(s, None), "slack", "U-raj")
    assert report.ideas_detached == 1
    async with h.app.sessions() as s:
        idea = await s.scalar(select(IdeaRow))
    assert idea is not None
    assert idea.author_key is None
    assert idea.status == "pending"
    await h.driver.command(h.person("maya"), "next")
    assert "Fix potholes within a week" in h.public_text()  # released with the others, unnamed
    assert h.keys.get(rid) is not None
