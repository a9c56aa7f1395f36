"""Two `convene run` workers on one PostgreSQL database, each a Slack endpoint behind a "load
balancer" (the test sends each request to one or the other, and some to both, as a retrying proxy
does). What people would notice: a worker that does not come up, a release out of order, an action
card posted twice, a vote lost or counted twice, a deadline that moves the round twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.persistence.db import make_engine
from tests.harness import empty_schema
from tests.platform_fakes.markup import slack_seen
from tests.platform_fakes.slack import FakeSlackWebAPI
from tests.scale.cluster import CHANNEL, CONVENER, Cluster

pytestmark = pytest.mark.postgres

VOTERS = [f"U0V{i:02d}" for i in range(8)]
SECTORS = ["public_sector", "business", "civil_society", "resident"]
WORDS = {"a": "agree", "d": "disagree", "p": "pass"}


def first_appearances(texts: list[str]) -> list[int]:
    seen: list[int] = []
    for t in texts:
        for n in re.findall(r"Idea (\d+)\b", t):
            if int(n) not in seen:
                seen.append(int(n))
    return seen


async def vote_all(cluster: Cluster, uid: str, choices: dict[int, str], offset: int) -> None:
    """Vote on every idea through the deck, each click to the next worker in turn; every third click
    reaches both workers at once (the proxy retried it)."""
    fake = cluster.fake
    turn = itertools.count(offset)
    for _step in range(6 * (len(choices) + 2)):
        k = next(turn)
        slack = cluster.slacks[k % 2]
        card = slack.card(uid)
        if card is None:
            await slack.open_deck(uid)
            continue
        idea = card.idea()
        if idea is None:
            return  # "You have voted on every idea"
        action = card.vote(choices[idea])
        inbound = fake.payloads.block_actions(
            action, action, user_id=uid, user_name=uid.lower(), channel_id=CHANNEL,
            message_ts=card.key, message=card.raw, is_ephemeral=True,
        )  # fmt: skip
        targets = cluster.slacks if k % 3 == 0 else [slack]
        sent = await asyncio.gather(*(s.send(inbound) for s in targets))
        assert all(sent), "a click was not acknowledged"
        deadline = time.monotonic() + 5
        while slack.card(uid) == card and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    raise AssertionError(f"{uid} never reached the end of the deck")


async def test_two_workers_on_one_database(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)

    async def scalar(sql: str, **params: object) -> object:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def delivered() -> None:
        async with asyncio.timeout(30):
            while await scalar("select count(*) from outbox where status in ('pending', 'in_flight')"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    await empty_schema(engine)  # an empty database: nothing migrated yet
    async with FakeSlackWebAPI() as fake:
        cluster = Cluster(
            pg_url, tmp_path, fake, 2, scheduler={"poll_seconds": 0.2}, outbox={"poll_seconds": 0.2}
        )
        try:
            # Both workers start at once on the empty database and both come up.
            await cluster.start()
            a, b = cluster.slacks
            await a.form(
                CONVENER,
                "start",
                {"title": "Safer streets", "purpose": "Goals for our streets", "template": "standard",
                 "vote_minutes": "60"},
            )  # fmt: skip
            for i, uid in enumerate(VOTERS):
                await cluster.slacks[i % 2].form(uid, "join", {"sector": SECTORS[i % len(SECTORS)]})
            contributors = (VOTERS * 3)[:-1]  # three ideas each: 24 ideas, two release lists
            for i, uid in enumerate(contributors):
                await cluster.slacks[i % 2].form(uid, "contribute", {"text": f"Idea text {i}: safer way {i}"})
            # The last idea's form is submitted to both workers at once: it is stored once.
            last = VOTERS[-1]
            inbound = await a.command(last, "contribute")
            view = await a.view_for(inbound.trigger_id)
            assert view is not None
            submission = a.submission(last, view, {"text": "Light the canal path"})
            sent = await asyncio.gather(a.send(submission), b.send(submission))
            assert all(sent)
            assert await scalar("select count(*) from ideas") == 24

            # The release: every list in order in the channel, whichever worker's relay posted it.
            await b.command(CONVENER, "next")
            async with asyncio.timeout(20):
                while await scalar("select phase from rounds") != "vote":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await delivered()
            posts = [
                slack_seen(c.get("blocks")).text
                for c in fake.calls("chat.postMessage")
                if c.ok and c.get("channel") == CHANNEL
            ]
            released = first_appearances(posts)
            assert released == list(range(1, 25)), "the release is out of order"

            # Votes through the deck, clicks spread over both workers, every third one sent to both.
            rng = random.Random(7)
            choices = {uid: {n: rng.choice("adp") for n in range(1, 25)} for uid in VOTERS}
            async with asyncio.timeout(40):
                await asyncio.gather(
                    *(vote_all(cluster, uid, choices[uid], i) for i, uid in enumerate(VOTERS))
                )
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "select idea_number, choice, count(*) from ballots"
                        " where choice is not null group by idea_number, choice"
                    )
                )
                stored = Counter({(int(n), str(c)): int(k) for n, c, k in rows})
            intended = Counter((n, WORDS[c]) for per in choices.values() for n, c in per.items())
            assert stored == intended, "a vote was lost or counted twice"

            # The vote deadline passes: both workers' schedulers see it due; the round moves once.
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "update timers set due_at = :now where kind = 'phase_deadline' and status = 'pending'"
                    ),
                    {
                        "now": dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
                    },  # stored as UTC
                )
            async with asyncio.timeout(20):
                while await scalar("select phase from rounds") != "goals":  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await delivered()
            headers = [
                p
                for p in fake.calls("chat.postMessage")
                if "voting has closed" in slack_seen(p.get("blocks")).text
            ]
            assert len(headers) == 1, "the deadline fired twice"

            # A goal, then an action: its card is posted once by one worker's relay; "I'll take this"
            # reaching each worker in turn edits that card, never posts another.
            goal = next(
                i
                for m in fake.messages(CHANNEL)
                for _l, i in slack_seen(m.get("blocks")).buttons
                if i.endswith(":goal:1")
            )
            await a.form(
                CONVENER, "", {"title": "Safe routes", "outcome": "Children walk safely", "metric": "Schools",
                               "unit": "schools", "baseline": "4", "target": "32", "deadline": "2027-09-01",
                               "pilot": "no"},
                button=goal,
            )  # fmt: skip
            await b.command(CONVENER, "next")
            await delivered()
            await a.form(
                CONVENER,
                "action 1",
                {"goal": "1", "title": "Map the routes", "owner": "", "due": "2027-01-31"},
            )
            await delivered()
            take = next(i for i in a.buttons(r":take:1$"))
            click = fake.payloads.block_actions(
                take, take, user_id=VOTERS[2], user_name="v2", channel_id=CHANNEL
            )
            assert await b.send(click)
            async with asyncio.timeout(20):
                while not await scalar("select owner_name from actions"):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await delivered()
            cards = [
                m
                for m in fake.messages(CHANNEL)
                if "Action 1: Map the routes" in slack_seen(m.get("blocks")).text
            ]
            assert len(cards) == 1, "an edit of the action card became a second card"
            assert "nobody yet" not in slack_seen(cards[0].get("blocks")).text, (
                "the card still says nobody took the action"
            )
            assert await scalar("select count(*) from outbox where status not in ('sent')") == 0
        finally:
            await cluster.stop()
            await engine.dispose()
        assert "Traceback" not in cluster.logs()
