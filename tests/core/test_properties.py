"""Random interleavings of what people do, checked against the round's invariants (Hypothesis)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.persistence.db import make_engine
from bot.persistence.tables import Base
from bot.sanitize import comparison_key
from tests.core import story
from tests.harness import Harness, make_harness

NAMES = [name for name, _p, _s in story.PEOPLE]
action = st.one_of(
    st.tuples(st.just("contribute"), st.sampled_from(NAMES), st.integers(0, 30)),
    st.tuples(st.just("withdraw"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("vote"), st.sampled_from(NAMES), st.integers(1, 8)),
    st.tuples(st.just("next"), st.just("maya"), st.just(0)),
)


async def texts(h: Harness) -> Counter[str]:
    async with h.app.engine.connect() as conn:
        return Counter(row[0] for row in await conn.execute(text("select text from ideas")))


async def play(actions: list[tuple[str, str, int]]) -> None:
    engine = make_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    h = await make_harness(engine)
    try:
        await story.start(h)
        await story.link_discord(h)
        await story.join_all(h)
        kept: Counter[str] = Counter()
        for kind, name, n in actions:
            who = h.driver.people[name]
            phase = await h.scalar("select phase from rounds")
            if kind == "contribute":
                idea = f"idea {name} {n}"
                form = await h.driver.command(who, "contribute")
                if form is not None:
                    await h.driver.submit(who, form, {"text": idea})
                    if "recorded anonymously" in h.privates(name)[-1]:
                        kept[idea] += 1
            elif kind == "withdraw" and phase == "contribute":
                await h.driver.command(who, "mine")
                buttons = [b for b in h.driver.buttons_seen_by(who) if b.label.startswith("Withdraw")]
                if buttons:
                    before = await texts(h)
                    await h.driver.press(who, buttons[0])
                    gone = before - await texts(h)
                    assert len(gone) == 1
                    kept -= Counter(gone)
            elif kind == "vote" and phase == "vote":
                if n <= await h.scalar("select count(*) from ideas where status = 'released'"):
                    await h.driver.vote_on(who, n, "Agree")
            elif kind == "next" and phase in ("contribute", "vote"):
                await h.driver.command(who, "next")
        # Invariants, whatever happened:
        public = [i.text for i in h.shown() if i.kind in ("post", "edit")]
        assert not any(re.search(r"U-[a-z]+", t) for t in public)
        ideas = await h.scalar("select count(*) from ideas")
        released = await h.scalar("select count(*) from ideas where status = 'released'")
        pending_keys = await h.scalar(
            "select count(*) from ideas where status = 'pending' and author_key is null"
        )
        assert pending_keys == 0  # a pending idea always knows its author (for withdraw)
        assert (
            await h.scalar("select count(*) from ideas where status = 'released' and author_key is not null")
            == 0
        )
        if released:
            # Every kept contribution was released once (identical ones merged), in each of the two
            # linked channels.
            distinct = {comparison_key(t) for t in kept.elements()}
            assert released == ideas == len(distinct)
            for platform in ("slack", "discord"):
                releases = [
                    i
                    for i in h.shown(platform)
                    if i.kind == "post" and any(b.label == "Vote" for b in i.buttons)
                ]
                lines = re.findall(r"^Idea \d+ · (.*)$", "\n".join(i.text for i in releases), flags=re.M)
                assert len(lines) == ideas
                assert sorted(comparison_key(t) for t in lines) == sorted(distinct)
        else:
            assert ideas == sum(kept.values())
        joined = await h.scalar("select count(*) from participants")
        ballots = await h.scalar("select count(*) from ballots")
        assert ballots <= joined * max(ideas, 1)
        dupes = await h.scalar(
            "select count(*) from (select idea_number, voter_key from ballots"
            " group by idea_number, voter_key having count(*) > 1) d"
        )
        assert dupes == 0
        assert await h.scalar("select count(*) from outbox where visibility <> 'public'") == 0
    finally:
        await h.close()
        await engine.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, max_size=25))
def test_any_sequence_of_actions_keeps_the_invariants(actions: list[tuple[str, str, int]]) -> None:
    asyncio.run(play(actions))
