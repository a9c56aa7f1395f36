"""A whole round as people live it, on both databases, and the refusals along the way."""

from __future__ import annotations

import re

from tests.core import story
from tests.harness import Harness

USER_IDS = re.compile(r"U-(maya|raj|lena|ade|kim|ola)")


async def test_a_whole_round_reaches_every_linked_channel_without_attribution(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    slack_release = "\n".join(i.text for i in h.shown("slack") if i.kind == "post")
    discord_release = "\n".join(i.text for i in h.shown("discord") if i.kind == "post")
    for text in ("Fix potholes within a week", "Light the canal path"):
        assert text in slack_release
        assert text in discord_release
    for n, choice in enumerate(["Agree", "Agree", "Disagree", "Agree"], start=1):
        for name, _platform, _sector in story.PEOPLE:
            await story.vote(h, name, n, choice)
    await story.vote(h, "raj", 3, "Agree")  # a changed ballot replaces the first
    assert not re.search(r"\d+ agree", h.public_text())  # tallies stay hidden until voting closes
    maya = h.person("maya")
    await h.driver.command(maya, "next")
    results = h.public_text()
    assert "1 agree, 5 disagree" in results  # raj's changed vote counted once
    assert "6 agree, 0 disagree" in results
    # Sector figures only for sectors with at least k (here 2) voters: never Lena's lone "business".
    assert "Agreement by sector: Public sector 100% · Resident 100%" in results
    assert "Business" not in results
    form = await h.driver.press(maya, h.driver.find_button(maya, "Make Idea 1 a goal", ":goal:1"))
    assert form is not None
    await h.driver.submit(
        maya, form, await story.goal_values(idea="1", pilot="yes", review_date="2027-03-01")
    )
    await h.driver.command(maya, "next")
    form = await h.driver.command(maya, "action 1")
    assert form is not None
    await h.driver.submit(
        maya, form, {"goal": "1", "title": "Map the routes", "owner": "", "due": "2027-01-31"}
    )
    kim = h.driver.people["kim"]
    await h.driver.press(kim, h.driver.find_button(kim, "I'll take this", ":take:1"))
    assert "Action 1 (Map the routes) is yours" in h.privates("kim")[-1]
    await h.driver.command(maya, "close")
    summary = next(i.text for i in reversed(h.shown("slack")) if "summary" in i.text)
    assert "owner Kim" in summary  # actions are attributed on purpose
    assert "from 4 to 32 schools by 2027-09-01 (pilot, review 2027-03-01)" in summary
    assert await h.scalar("select phase from rounds") == "closed"
    # Nothing public names a contributor, a voter's platform or sector.
    public_items = [i for i in h.shown() if i.kind in ("post", "edit")]
    assert not any(USER_IDS.search(i.text) for i in public_items)
    assert not re.search(r"(?i)from slack|from discord|public sector|resident", summary)
    # Private replies were delivered and then forgotten: no row keeps who was told what.
    assert await h.scalar("select count(*) from outbox where visibility <> 'public'") == 0


async def test_bad_input_gets_a_private_message_and_changes_nothing(harness: Harness) -> None:
    h = harness
    await story.start(h)
    await story.link_discord(h)
    raj = h.person("raj", "slack")
    await h.driver.command(raj, "contribute")
    assert "Please join" in h.privates("raj")[-1]
    await story.join_all(h)
    await h.driver.command(raj, "join")  # a second join
    assert "already joined" in h.privates("raj")[-1]
    before = await h.scalar("select count(*) from ideas")
    form = await h.driver.command(raj, "contribute")
    assert form is not None
    for text in ("", "   ", "x" * 1001):
        await h.driver.submit(raj, form, {"text": text})
        assert "nothing was saved" in h.privates("raj")[-1]
    assert "x" * 1001 in h.privates("raj")[-1]  # what was typed is given back, privately
    await h.driver.command(raj, "contribute Fix the lights")  # text in a shared channel
    assert "only taken through the private form" in h.privates("raj")[-1]
    await h.driver.command(raj, "next")
    assert "Only a convener" in h.privates("raj")[-1]
    await h.driver.command(raj, "frobnicate")
    assert "I don't know “frobnicate”" in h.privates("raj")[-1]
    assert await h.scalar("select count(*) from ideas") == before
    assert await h.scalar("select phase from rounds") == "contribute"
    for n in range(3):
        await story.contribute(h, "raj", f"Idea number {n}")
    assert await h.driver.command(raj, "contribute") is None  # the form is not even offered
    assert "limit of 3 ideas" in h.privates("raj")[-1]
    await h.driver.submit(raj, form, {"text": "One too many, through an old form"})
    assert "limit of 3 ideas" in h.privates("raj")[-1]
    assert await h.scalar("select count(*) from ideas") == 3
    # No tracebacks anywhere anyone could see.
    assert "Traceback" not in "\n".join(i.text for i in h.shown())


async def test_withdraw_own_idea_before_release_only(harness: Harness) -> None:
    h = harness
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute(h, "raj", "Mine to withdraw")
    await story.contribute(h, "lena", "Lena keeps this")
    lena = h.driver.people["lena"]
    await h.driver.command(lena, "mine")
    assert "Mine to withdraw" not in h.privates("lena")[-1]  # only your own ideas are listed
    raj = h.driver.people["raj"]
    await h.driver.command(raj, "mine")
    await h.driver.press(raj, h.driver.find_button(raj, "Withdraw #1"))
    assert "withdrawn" in h.privates("raj")[-1]
    await h.driver.command(h.person("maya"), "next")
    assert "Mine to withdraw" not in h.public_text()
    assert "Lena keeps this" in h.public_text()


async def test_votes_outside_the_vote_phase_are_refused(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    raj = h.driver.people["raj"]
    card = await h.driver.open_deck(raj)
    await h.driver.command(h.person("maya"), "next")
    assert card is not None
    await h.driver.press(raj, next(b for b in card.buttons if b.label == "Agree"))
    assert "Voting on Safer streets has closed" in h.privates("raj")[-1]
    closed = h.driver.card(raj)
    assert closed is not None
    assert not closed.buttons  # the closed card offers nothing to click
    assert await h.scalar("select count(*) from ballots") == 0


async def test_a_round_linked_on_two_platforms_is_one_pool(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    assert await h.scalar("select count(*) from round_conversations") == 2
    assert await h.scalar("select count(distinct round_id) from round_conversations") == 1
    assert await h.scalar("select count(*) from ideas") == 4
