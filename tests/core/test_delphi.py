"""Delphi targets: anonymous estimates of a goal's target, a spread shown only in batches of k, a
second round in the light of the first, a target fixed by a convener, and estimates that end up
linked to no one."""

from __future__ import annotations

import re

from sqlalchemy import text

from bot.keys import pseudonym
from tests.core import story
from tests.harness import Harness

ESTIMATES = {"raj": "30", "lena": "40", "ade": "20", "kim": "36", "ola": "24"}


async def goal_phase(h: Harness) -> str:
    rid = await story.to_vote(h)
    maya = h.person("maya")
    await h.driver.command(maya, "next")
    form = await h.driver.command(maya, "goal")
    assert form is not None
    await h.driver.submit(maya, form, await story.goal_values())
    return rid


async def estimate(h: Harness, name: str, value: str) -> None:
    who = h.driver.people[name]
    form = await h.driver.press(who, h.driver.find_button(who, "Estimate the target", ":est:1"))
    assert form is not None, h.privates(name)
    await h.driver.submit(who, form, {"estimate": value})


def delphi_cards(h: Harness, platform: str = "slack") -> list[str]:
    return [i.text for i in h.shown(platform) if i.text.startswith("🎯 Estimate the target of Goal 1")]


async def voter_keys(h: Harness) -> set[str]:
    async with h.app.engine.connect() as conn:
        return {row[0] for row in await conn.execute(text("select voter_key from delphi_estimates"))}


async def test_estimates_show_their_spread_in_batches_of_k_then_a_second_round_and_a_fixed_target(
    harness: Harness,
) -> None:
    h = harness  # k = 2 in the test config
    rid = await goal_phase(h)
    maya = h.person("maya")
    await h.driver.command(h.driver.people["kim"], "delphi 1")
    assert "Only a convener" in h.privates("kim")[-1]
    await h.driver.command(maya, "delphi 7")
    assert "no goal with that number" in h.privates("maya")[-1]
    await h.driver.command(maya, "delphi 1")
    assert len(delphi_cards(h)) == 1
    assert len(delphi_cards(h, "discord")) == 1
    assert "shown once 2 are in" in delphi_cards(h)[0]

    await estimate(h, "raj", "30")
    assert len(delphi_cards(h)) == 1  # one estimate moves nothing anyone can see
    assert "Your estimate is in, anonymously" in h.privates("raj")[-1]
    await estimate(h, "raj", "99")
    assert "already estimated" in h.privates("raj")[-1]
    await estimate(h, "lena", "lots")
    assert "Please enter a number" in h.privates("lena")[-1]
    await estimate(h, "lena", "40")
    assert "So far: median 35, middle half from 32.5 to 37.5 (2 estimates)" in delphi_cards(h)[-1]
    await estimate(h, "ade", "20")
    assert len(delphi_cards(h)) == 2  # the third waits for the next batch
    await estimate(h, "kim", "36")
    assert "So far: median 33, middle half from 27.5 to 37 (4 estimates)" in delphi_cards(h)[-1]

    # While the Delphi runs, estimates are keyed by the round key's pseudonym (one per person)...
    key = h.keys.get(rid)
    assert key is not None
    people = {pseudonym(key, h.driver.people[n].ref.key()) for n in ("raj", "lena", "ade", "kim")}
    assert await voter_keys(h) == people

    await h.driver.press(h.driver.people["kim"], h.driver.find_button(maya, "Second round", ":d2:1"))
    assert "Only a convener" in h.privates("kim")[-1]
    await h.driver.press(maya, h.driver.find_button(maya, "Second round", ":d2:1"))
    card = delphi_cards(h)[-1]
    assert "(second round)" in card
    assert "First round: median 33, middle half from 27.5 to 37 (4 estimates)" in card
    await estimate(h, "raj", "32")  # a new round: Raj may estimate again
    await estimate(h, "ola", "30")
    assert "Second round: median 31, middle half from 30.5 to 31.5 (2 estimates)" in delphi_cards(h)[-1]

    form = await h.driver.press(maya, h.driver.find_button(maya, "Fix the target", ":dfix:1"))
    assert form is not None
    assert form.fields[0].initial == "31"
    await h.driver.submit(maya, form, {"target": "4"})
    assert "must differ from the baseline" in h.privates("maya")[-1]
    await h.driver.submit(maya, form, {"target": "31"})
    assert "Goal 1's target is now 31 schools" in h.privates("maya")[-1]
    assert "fixed the target at 31 schools" in delphi_cards(h)[-1]
    goal_card = [i for i in h.shown("slack") if i.text.startswith("Goal 1: Safe routes")][-1]
    assert goal_card.kind == "edit"
    assert "from 4 to 31 schools" in goal_card.text
    # ...and once it is fixed, no estimate is linked to anyone, even with the round key.
    keys = await voter_keys(h)
    assert len(keys) == 6
    assert not keys & people
    assert not re.search(r"U-(raj|lena|ade|kim|ola)", h.public_text())


async def test_a_delphi_needs_k_estimates_before_a_second_round_and_closes_with_the_round(
    harness: Harness,
) -> None:
    h = harness
    rid = await goal_phase(h)
    maya = h.person("maya")
    await h.driver.command(maya, "delphi 1")
    await estimate(h, "raj", "30")
    await h.driver.press(maya, h.driver.find_button(maya, "Second round", ":d2:1"))
    assert "at least 2 estimates first" in h.privates("maya")[-1]
    outsider = h.person("tom", "slack")  # never joined
    form = await h.driver.press(outsider, h.driver.find_button(outsider, "Estimate the target", ":est:1"))
    assert form is None
    assert "Please join" in h.privates("tom")[-1]
    key = h.keys.get(rid)
    assert key is not None
    raj = pseudonym(key, h.driver.people["raj"].ref.key())
    assert await voter_keys(h) == {raj}
    await h.driver.command(maya, "next")
    await h.driver.command(maya, "close")
    assert "Estimates are closed" in delphi_cards(h)[-1]
    assert raj not in await voter_keys(h)
