"""Threat-model case B7, moderation without unmasking: a pre-moderated round's review list shows
conveners the text only; a rejection reaches its author alone, privately, with the reason; a removed
idea disappears from every channel's release post (edited in place), from the deck and the tally; a
convener blocks an author for the round without learning who it is; the log names nobody."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.reports import report_csv, round_report
from tests.core import story
from tests.harness import Harness, make_harness

PREMODERATED = {"sector_min_voters": 2, "templates": {"standard": {"premoderation": True}}}
SLUR = "Those people from the estate are vermin"
DOX = "The Parks guy said he'd fix it and lied"


async def rows(h: Harness, sql: str) -> list[Any]:
    async with h.app.engine.connect() as conn:
        return list(await conn.execute(text(sql)))


def directs(h: Harness, name: str) -> list[str]:
    return [i.text for i in h.shown() if i.kind == "direct" and i.recipient == name.capitalize()]


async def premoderated_round(engine: AsyncEngine) -> Harness:
    h = await make_harness(engine, rounds=PREMODERATED)
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    return h


async def test_B7_review_shows_text_only_and_a_rejection_reaches_its_author_alone(
    engine: AsyncEngine,
) -> None:
    h = await premoderated_round(engine)
    maya = h.person("maya")
    await story.contribute(h, "raj", "Fix potholes within a week")
    assert "The conveners review each idea before it is shown" in h.privates("raj")[-1]
    await story.contribute(h, "kim", SLUR)
    assert SLUR not in h.public_text()

    await h.driver.command(maya, "review")
    listing = h.privates("maya")[-1]
    assert "Ideas waiting for review: 2" in listing
    assert SLUR in listing
    assert "Fix potholes within a week" in listing
    for who in ("Kim", "Raj", "discord", "slack", "resident", "public_sector"):
        assert who not in listing  # text only: no name, platform or sector
    # Only a convener opens the list, and reviews.
    await h.driver.command(h.driver.people["lena"], "review")
    assert "Only a convener" in h.privates("lena")[-1]

    # Reject with a reason (a form); an empty reason is refused inside the form, nothing stored.
    at = re.findall(r"#(\d)", listing[: listing.index(SLUR)])[-1]
    form = await h.driver.press(maya, h.driver.find_button(maya, f"Reject #{at}"))
    assert form is not None
    assert SLUR in form.intro
    before = await h.scalar("select count(*) from ideas")
    await h.driver.submit(maya, form, {"reason": "   "})
    assert await h.scalar("select count(*) from ideas") == before
    assert await h.scalar("select count(*) from moderation_log") == 0
    await h.driver.submit(maya, form, {"reason": "Insults a group of residents"})
    assert "its author is told your reason privately" in h.privates("maya")[-1]
    told = directs(h, "kim")
    assert len(told) == 1
    assert "Insults a group of residents" in told[0]
    assert SLUR not in told[0]  # the outbox row never pairs a person with their idea's text
    for other in ("raj", "lena", "ade", "ola", "maya"):
        assert not directs(h, other)
    assert "Kim" not in "\n".join(h.privates("maya"))
    # The same button again: already decided, a clear private refusal.
    await h.driver.submit(maya, form, {"reason": "again"})
    assert "no longer waiting for review" in h.privates("maya")[-1]

    # Only unreviewed ideas: nothing could be shown, so voting does not open early.
    await h.driver.command(maya, "next")
    assert "no ideas" in h.privates("maya")[-1].lower()
    # Approve the other; it is released with the rest when voting opens, the rejected one never.
    await h.driver.command(maya, "review")
    await h.driver.press(maya, h.driver.find_button(maya, "Approve #1"))
    assert "Approved" in h.privates("maya")[-1]
    await h.driver.command(maya, "next")
    shown = story.released(h)
    assert "Fix potholes within a week" in shown
    assert SLUR not in h.public_text()

    # The log: day, decision, reason, text hash; no author, no time of day.
    log = await rows(h, "select day, decision, reason, text_hash from moderation_log order by decision")
    assert [(str(d), dec) for d, dec, _r, _t in log] == [
        ("2026-11-26", "approved"),
        ("2026-11-26", "rejected"),
    ]
    assert len(log[1][3]) == 64
    assert log[1][2] == "Insults a group of residents"
    report = await round_report(h.app.sessions, (await rows(h, "select id from rounds"))[0][0])
    exported = report_csv(report, "moderation")
    assert next(csv.reader(io.StringIO(exported))) == ["day", "decision", "reason", "text_hash"]
    for leak in ("kim", "Kim", "discord", SLUR):
        assert leak not in exported


async def test_B7_a_blocked_author_is_refused_privately_and_nobody_learns_who(engine: AsyncEngine) -> None:
    h = await premoderated_round(engine)
    maya = h.person("maya")
    await story.contribute(h, "ola", "A threat against the councillor")
    await h.driver.command(maya, "review")
    form = await h.driver.press(maya, h.driver.find_button(maya, "Reject #1"))
    assert form is not None
    await h.driver.submit(maya, form, {"reason": "Threats are not allowed"})
    block = h.driver.find_button(maya, "Block its author in this round")
    await h.driver.press(maya, block)
    confirmation = h.privates("maya")[-1]
    assert "cannot add more ideas in this round" in confirmation
    assert "Ola" not in confirmation
    blocks = await h.scalar("select count(*) from round_blocks")
    assert blocks == 1
    # Blocking twice changes nothing.
    await h.driver.press(maya, block)
    assert await h.scalar("select count(*) from round_blocks") == 1

    ideas = await h.scalar("select count(*) from ideas")
    form = await h.driver.command(h.driver.people["ola"], "contribute")
    assert form is None
    assert "blocked new ideas from you in this round" in h.privates("ola")[-1]
    assert await h.scalar("select count(*) from ideas") == ideas
    # Others carry on.
    await story.contribute(h, "kim", "Light the canal path")
    assert "recorded anonymously" in h.privates("kim")[-1]
    # The stored marks name no one: none equals a pseudonym or another mark, nor any user id.
    marks = [m for (m,) in await rows(h, "select mark from round_blocks")]
    marks += [m for (m,) in await rows(h, "select mark from author_marks")]
    keys = [k for (k,) in await rows(h, "select author_key from ideas where author_key is not null")]
    assert len(set(marks)) == len(marks)
    assert not set(marks) & set(keys)
    # When voting ends the marks and blocks go with it.
    await h.driver.command(maya, "review")
    await h.driver.press(maya, h.driver.find_button(maya, "Approve #1"))
    await h.driver.command(maya, "next")
    await h.driver.command(maya, "next")
    assert await h.scalar("select count(*) from round_blocks") == 0
    assert await h.scalar("select count(*) from author_marks") == 0


async def test_B7_removal_edits_every_release_post_in_place_and_leaves_the_deck_and_tally(
    harness: Harness,
) -> None:
    h = harness
    await story.to_vote(h)
    maya = h.person("maya")
    shown = story.released(h)
    n = shown["Light the canal path"]
    posts_before = sum(1 for i in h.shown() if i.kind == "post")
    await story.vote(h, "raj", n, "Agree")
    await story.vote(h, "lena", n, "Agree")

    await h.driver.command(h.driver.people["raj"], f"remove {n}")
    assert "Only a convener" in h.privates("raj")[-1]
    await h.driver.command(maya, "remove 99")
    assert "no idea with that number" in h.privates("maya")[-1]
    await h.driver.command(maya, f"remove {n}")
    assert f"Idea {n} is removed" in h.privates("maya")[-1]
    # Each channel's release post is edited in place: no new post, the line replaced.
    assert sum(1 for i in h.shown() if i.kind == "post") == posts_before
    for platform in ("slack", "discord"):
        edits = [i for i in h.shown(platform) if i.kind == "edit" and "Idea" in i.text]
        assert len(edits) == 1, platform
        assert f"Idea {n} · removed by the conveners" in edits[0].text
        assert "Light the canal path" not in edits[0].text
        assert "Fix potholes within a week" in edits[0].text
    assert await h.scalar("select count(*) from ideas where text = 'Light the canal path'") == 0
    # Removing it again: a clear refusal.
    await h.driver.command(maya, f"remove {n}")
    assert "no idea with that number" in h.privates("maya")[-1]

    # Out of the deck: everyone can vote on every other idea and is then done, never shown it.
    for name in ("kim", "ola"):
        for other in sorted(set(shown.values()) - {n}):
            await story.vote(h, name, other, "Agree")
        card = h.driver.card(h.driver.people[name])
        assert h.driver.idea_on(card) is None
    try:
        await story.vote(h, "ade", n, "Agree")
        raise AssertionError("a removed idea was shown in the deck")
    except LookupError:
        pass
    # Out of the tally.
    await h.driver.command(maya, "next")
    assert await h.scalar(f"select count(*) from ballots where idea_number = {n}") == 0
    results = "\n".join(i.text for i in h.shown("slack") if i.kind == "post" and "consensus" in i.text)
    assert "voting has closed.** 3 ideas" in results or "voting has closed. 3 ideas" in results
    assert f"Idea {n}\n" not in results
    assert f"Idea {n} " not in results
    assert "Light the canal path" not in results
    # A goal cannot be made from it.
    form = await h.driver.command(maya, "goal")
    assert form is not None
    await h.driver.submit(maya, form, await story.goal_values(idea=str(n)))
    assert await h.scalar("select count(*) from goals") == 0
    # The author of a removed idea can be blocked only while ideas come in: the marks are gone.
    assert await h.scalar("select count(*) from author_marks") == 0
    log = await rows(h, "select decision, reason from moderation_log")
    assert log == [("removed", "")]


async def test_B7_the_author_of_a_removed_idea_can_be_blocked_in_a_continuous_round(
    engine: AsyncEngine,
) -> None:
    rounds = {
        "sector_min_voters": 2,
        "templates": {"standard": {"continuous": True}},
        "continuous": {"batch_min": 2, "min_participants": 2, "min_interval_minutes": 1, "jitter_minutes": 0},
    }
    h = await make_harness(engine, rounds=rounds)
    await story.to_vote(h)
    maya = h.person("maya")
    n = story.released(h)["Plant 1,000 street trees"]  # lena's
    await h.driver.command(maya, f"remove {n}")
    await h.driver.press(maya, h.driver.find_button(maya, "Block its author in this round"))
    assert "cannot add more ideas" in h.privates("maya")[-1]
    form = await h.driver.command(h.driver.people["lena"], "contribute")
    assert form is None
    assert "blocked new ideas from you" in h.privates("lena")[-1]
    form = await h.driver.command(h.driver.people["raj"], "contribute")
    assert form is not None


async def test_B7_the_charter_states_the_policy_no_unmasking(harness: Harness) -> None:
    h = harness
    await story.start(h)
    form = await h.driver.command(h.person("raj"), "join")
    assert form is not None
    assert "Nobody, by any command, can learn who wrote or voted what" in form.intro
    assert "review each idea" not in form.intro  # only in pre-moderated rounds


async def test_B7_an_erasure_takes_the_persons_marks_and_block_with_it(engine: AsyncEngine) -> None:
    from bot.service.handlers import retention

    h = await premoderated_round(engine)
    maya = h.person("maya")
    await story.contribute(h, "ola", "A threat against the councillor")
    await h.driver.command(maya, "review")
    form = await h.driver.press(maya, h.driver.find_button(maya, "Reject #1"))
    assert form is not None
    await h.driver.submit(maya, form, {"reason": "Threats are not allowed"})
    block = h.driver.find_button(maya, "Block its author in this round")
    await h.driver.press(maya, block)
    assert await h.scalar("select count(*) from round_blocks") == 1
    assert await h.scalar("select count(*) from author_marks") == 1
    async with h.app.sessions() as s, s.begin():
        await retention.erase(h.app.core.bus.unit(s, None), "discord", "U-ola")
    assert await h.scalar("select count(*) from round_blocks") == 0
    assert await h.scalar("select count(*) from author_marks") == 0
    # The block button now finds nobody: said so, privately; nothing is written.
    await h.driver.press(maya, block)
    assert "can no longer be found" in h.privates("maya")[-1]
    assert await h.scalar("select count(*) from moderation_log where decision = 'blocked'") == 1
