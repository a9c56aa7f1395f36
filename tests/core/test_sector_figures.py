"""Sector figures at vote close: per (sector, idea) cell, never a group smaller than k, and nothing
that can be subtracted from the published counts to reveal one."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.core import story
from tests.harness import make_harness

OFFICIALS = ["oona", "omar", "olga"]  # public_sector, on Slack
RESIDENTS = ["rhea", "rudi", "rosa"]  # resident, on Discord


def _line_of(text: str, idea_text: str) -> str:
    """The "Agreement by sector" line under an idea in the results."""
    match = re.search(re.escape(idea_text) + r"\n(Agreement by sector:[^\n]*)", text)
    assert match, text
    return match.group(1)


async def test_A5_a_sector_figure_needs_k_voters_on_that_idea(engine: AsyncEngine) -> None:
    h = await make_harness(engine, rounds={"sector_min_voters": 3})
    try:
        await story.start(h)
        await story.link_discord(h)
        for name in OFFICIALS:
            who = h.person(name, "slack")
            form = await h.driver.command(who, "join")
            assert form is not None
            await h.driver.submit(who, form, {"sector": "public_sector"})
        for name in RESIDENTS:
            who = h.person(name, "discord")
            form = await h.driver.command(who, "join")
            assert form is not None
            await h.driver.submit(who, form, {"sector": "resident"})
        await story.contribute(h, "oona", "Everyone votes on this one")
        await story.contribute(h, "rhea", "Only one official votes on this one")
        await h.driver.command(h.person("maya"), "next")
        numbers = story.released(h)
        everyone, one = numbers["Everyone votes on this one"], numbers["Only one official votes on this one"]
        for name in OFFICIALS + RESIDENTS:
            await story.vote(h, name, everyone, "Agree")
        await story.vote(h, "oona", one, "Disagree")  # the only official on this idea
        for name in RESIDENTS:
            await story.vote(h, name, one, "Agree")
        await h.driver.command(h.person("maya"), "next")
        results = h.public_text()
        # Both sectors have 3 voters on the first idea, nobody is left over: both figures shown,
        # and the sectors nobody declared are said to be below k.
        assert _line_of(results, "Everyone votes on this one") == (
            "Agreement by sector: Public sector 100% · Resident 100% · others: fewer than 3 voters"
        )
        # The old rule (3 officials voted in the round) published "Public sector 0%" here: one
        # person's vote. The residents' figure goes too, or 4 votes minus 3 residents would be her.
        assert _line_of(results, "Only one official votes on this one") == (
            "Agreement by sector: not shown, fewer than 3 voters"
        )
        assert "Public sector 0%" not in results
    finally:
        await h.app.core.ingest.aclose()
