"""Nudges without naming (threat A14): a convener reminds everyone who has not finished voting.

What people would notice: someone named (in public or to the conveners) as not having voted, a
reminder to someone who has voted on everything, a count small enough to tell people apart, or
anyone but a convener able to send reminders to the whole round."""

from __future__ import annotations

import re

from tests.core import story
from tests.harness import Harness


def nudges(h: Harness, name: str) -> list[str]:
    return [
        i.text
        for i in h.shown()
        if i.kind == "direct" and i.recipient == name.capitalize() and "Voting in" in i.text
    ]


async def vote_all(h: Harness, name: str, ideas: range) -> None:
    for n in ideas:
        await story.vote(h, name, n, "Agree")


async def test_A14_a_nudge_reaches_only_who_has_ideas_left_names_nobody_and_counts_from_k(
    harness: Harness,
) -> None:
    h = harness
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute_all(h)
    maya, raj = h.person("maya"), h.person("raj")
    await h.driver.command(maya, "nudge")
    assert "not possible in the Contribute ideas phase" in h.privates("maya")[-1]
    await h.driver.command(maya, "next")  # voting: 4 ideas, 6 people, k = 2 (test config)
    await vote_all(h, "maya", range(1, 5))
    await vote_all(h, "raj", range(1, 5))
    await vote_all(h, "lena", range(1, 3))  # half way

    public_before = h.public_text()
    await h.driver.command(raj, "nudge")
    assert "Only a convener" in h.privates("raj")[-1]
    assert all(nudges(h, name) == [] for name, _p, _s in story.PEOPLE)

    await h.driver.command(maya, "nudge")
    behind = ["lena", "ade", "kim", "ola"]
    for name in behind:
        assert len(nudges(h, name)) == 1, name
    assert len({nudges(h, name)[0] for name in behind}) == 1, "the same words for everyone"
    assert nudges(h, "maya") == nudges(h, "raj") == [], "who finished is left alone"
    told = h.privates("maya")[-1]
    assert told.startswith("4 people had ideas left to vote on")
    for name, _platform, _sector in story.PEOPLE:
        assert name.capitalize() not in told
    assert h.public_text() == public_before, "nothing is said in public"
    assert await h.scalar("select count(*) from outbox where visibility = 'direct'") == 0, "no trail"

    # All but Kim finish: one person behind is fewer than k, so the convener learns no number.
    await vote_all(h, "lena", range(3, 5))
    for name in ("ade", "ola"):
        await vote_all(h, name, range(1, 5))
    await vote_all(h, "kim", range(1, 4))
    kim = h.person("kim")
    form = await h.driver.press(kim, h.driver.find_button(kim, "Rate urgency & impact", ":rate:4"))
    assert form is not None
    await h.driver.submit(kim, form, {"urgency": "5", "impact": "4"})  # a rating is no vote
    assert await h.scalar("select count(*) from ballots where choice is null") == 1
    await h.driver.command(h.person("ade", "discord"), "nudge")  # the convener who linked Discord
    assert h.privates("ade")[-1].startswith("Fewer than 2 people")
    assert not re.search(r"\b1\b", h.privates("ade")[-1])
    assert len(nudges(h, "kim")) == 2
    assert all(len(nudges(h, name)) == 1 for name in ("lena", "ade", "ola"))
