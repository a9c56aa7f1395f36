"""The private voting deck, as voters use it: one idea at a time, every click counted for the idea on
its card, refusals on the card itself, and a position that survives a restart."""

from __future__ import annotations

import random
import re
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.console.driver import ConsoleDriver
from adapters.console.port import Shown
from bot.messages import Button
from tests.core import story
from tests.harness import Harness, make_harness


def button(card: Shown | None, label: str) -> Button:
    assert card is not None
    found = [b for b in card.buttons if b.label == label]
    assert found, (label, card.text)
    return found[0]


def public_count(h: Harness) -> int:
    return len([i for i in h.shown() if i.kind in ("post", "edit")])


async def choices(h: Harness) -> dict[int, str]:
    async with h.app.engine.connect() as conn:
        from sqlalchemy import text

        rows = await conn.execute(text("select idea_number, choice from ballots where choice is not null"))
        return {int(n): str(c) for n, c in rows}


async def test_a_voter_walks_the_deck_one_idea_at_a_time_to_the_end(harness: Harness) -> None:
    h = harness
    rid = await story.to_vote(h)
    raj = h.driver.people["raj"]
    public = public_count(h)
    card = await h.driver.open_deck(raj)
    seen = []
    for n in range(4):
        idea = ConsoleDriver.idea_on(card)
        assert idea is not None
        assert idea not in seen
        seen.append(idea)
        assert card is not None
        assert f"Idea {idea} · {n} of 4 voted" in card.text
        # Every button of the card names the round and this card's idea.
        for b in card.buttons:
            assert b.action_id.startswith(f"cv:{rid}:")
            assert f":{idea}" in b.action_id, b.action_id
        await h.driver.press(raj, button(card, "Agree"))
        card = h.driver.card(raj)
        assert card is not None
        assert f"Your vote on Idea {idea} is recorded" in card.text
        assert card.in_place
    assert card is not None
    assert "You have voted on every idea (4)" in card.text
    assert sorted(seen) == [1, 2, 3, 4]
    assert await choices(h) == dict.fromkeys(seen, "agree")
    # No public post or edit per vote; nothing private went through the outbox either.
    assert public_count(h) == public
    assert await h.scalar("select count(*) from outbox where visibility <> 'public'") == 0


async def test_a_double_click_or_a_stale_card_changes_nothing(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    raj = h.driver.people["raj"]
    card = await h.driver.open_deck(raj)
    idea = ConsoleDriver.idea_on(card)
    await h.driver.press(raj, button(card, "Agree"))
    await h.driver.press(raj, button(card, "Agree"))  # the same click again
    assert f"Your vote on Idea {idea} was already recorded" in h.privates("raj")[-1]
    await h.driver.press(raj, button(card, "Disagree"))  # the old card, another choice
    assert f"Your vote on Idea {idea} was already recorded, so nothing was changed" in h.privates("raj")[-1]
    assert await choices(h) == {idea: "agree"}
    # The answer moves on to a card not voted on yet.
    assert ConsoleDriver.idea_on(h.driver.card(raj)) not in (None, idea)


async def test_back_shows_an_earlier_vote_and_changes_it(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    raj = h.driver.people["raj"]
    first = await h.driver.open_deck(raj)
    idea = ConsoleDriver.idea_on(first)
    await h.driver.press(raj, button(first, "Agree"))
    await h.driver.press(raj, button(h.driver.card(raj), "Back"))
    back = h.driver.card(raj)
    assert ConsoleDriver.idea_on(back) == idea
    assert back is not None
    assert "Your vote: Agree" in back.text
    assert "Next" in {b.label for b in back.buttons}  # a voted idea is left with Next, not Skip
    await h.driver.press(raj, button(back, "Disagree"))
    assert f"Your vote on Idea {idea} is changed" in h.privates("raj")[-1]
    assert await choices(h) == {idea: "disagree"}
    assert await h.scalar("select count(*) from ballots") == 1


async def test_skip_moves_on_without_voting_and_skipped_ideas_come_back(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    raj = h.driver.people["raj"]
    card = await h.driver.open_deck(raj)
    shown = []
    for _ in range(5):
        shown.append(ConsoleDriver.idea_on(card))
        await h.driver.press(raj, button(card, "Skip"))
        card = h.driver.card(raj)
    assert sorted(shown[:4]) == [1, 2, 3, 4]
    assert shown[4] == shown[0]  # round again
    assert await h.scalar("select count(*) from ballots") == 0


async def test_forged_and_foreign_deck_clicks_are_refused_on_the_card(harness: Harness) -> None:
    h = harness
    rid = await story.to_vote(h)
    raj, ola = h.driver.people["raj"], h.driver.people["ola"]
    card = await h.driver.open_deck(raj)
    idea = ConsoleDriver.idea_on(card)
    other = "ab" * 16  # a round that does not exist (or is not linked here)
    forged = {
        f"cv:{other}:v:{idea}:a:-": "That round no longer exists here",
        f"cv:{rid}:v:99:a:-": "There is no idea with that number",
        f"cv:{rid}:v:{idea}:x:-": "That button is no longer valid",
        f"cv:{rid}:v:{idea}:a:1..2": "That button is no longer valid",
        f"cv:{rid}:dk:{idea}:z:-": "That button is no longer valid",
        f"cv:{rid}:dk:99:s:-": "There is no idea with that number",
    }
    public = public_count(h)
    for action, said in forged.items():
        await h.driver.press(raj, Button(action, "Agree"))
        assert said in h.privates("raj")[-1], action
    # The old per-idea buttons of earlier releases no longer count either.
    await h.driver.press(raj, Button(f"cv:{rid}:v:{idea}:a", "Agree"))
    assert "That button is no longer valid" in h.privates("raj")[-1]
    assert await h.scalar("select count(*) from ballots") == 0
    assert public_count(h) == public
    # Someone who has not joined is asked to join, on their card.
    outsider = h.person("zoe", "discord")
    await h.driver.press(outsider, h.driver.find_button(outsider, "Vote", ":deck"))
    assert "Please join Safer streets first" in h.privates("zoe")[-1]
    await h.driver.press(ola, Button(f"cv:{rid}:v:{idea}:a:-", "Agree"))  # a member, from another card
    assert await choices(h) == {idea: "agree"}  # counted for the idea its id names


async def test_a_restart_between_two_clicks_continues_where_the_voter_was(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    raj = h.driver.people["raj"]
    card = await h.driver.open_deck(raj)
    await h.driver.press(raj, button(card, "Agree"))
    card = h.driver.card(raj)
    await h.driver.press(raj, button(card, "Pass"))
    card = h.driver.card(raj)
    assert card is not None
    await h.driver.press(raj, button(card, "Skip"))
    before = h.driver.card(raj)
    assert before is not None
    await h.app.aclose()  # the process stops; nothing of the deck was kept in memory

    again = await make_harness(h.app.engine, keys=h.keys, clock=h.clock)
    try:
        raj2 = again.person("raj", "slack")
        await again.driver.press(raj2, button(card, "Skip"))  # the card clicked before the restart
        after = again.driver.card(raj2)
        assert after is not None
        assert after.text == before.text  # the same next card, derived from the database alone
        await again.driver.press(raj2, button(after, "Agree"))
        now = again.driver.card(raj2)
        assert now is not None
        assert re.search(r"3 of 4 voted", now.text), now.text
        assert len(await choices(again)) == 3
    finally:
        await again.app.aclose()


async def test_everyone_votes_through_the_deck_and_the_tally_matches(harness: Harness) -> None:
    h = harness
    await story.to_vote(h)
    rng = random.Random(4)
    cast: Counter[tuple[int, str]] = Counter()
    for name, _platform, _sector in story.PEOPLE:
        who = h.driver.people[name]
        card = await h.driver.open_deck(who)
        while (idea := ConsoleDriver.idea_on(card)) is not None:
            choice = rng.choice(["Agree", "Disagree", "Pass"])
            cast[(idea, choice.lower())] += 1
            await h.driver.press(who, button(card, choice))
            card = h.driver.card(who)
    await h.driver.command(h.person("maya"), "next")
    results = "\n".join(i.text for i in h.shown("discord") if i.kind == "post" and "consensus" in i.text)
    for idea in range(1, 5):
        line = re.search(rf"Idea {idea}\b.*?(\d+) agree, (\d+) disagree, (\d+) pass", results)
        assert line, results
        assert tuple(map(int, line.groups())) == (
            cast[(idea, "agree")],
            cast[(idea, "disagree")],
            cast[(idea, "pass")],
        )
    # The goal buttons name their idea.
    assert {b.label for i in h.shown("slack") for b in i.buttons if "goal" in b.action_id} == {
        f"Make Idea {n} a goal" for n in range(1, 5)
    }


async def test_identical_ideas_are_merged_at_release_without_a_count(harness: Harness) -> None:
    h = harness
    await story.start(h)
    await story.link_discord(h)
    await story.join_all(h)
    await story.contribute(h, "raj", "Fix the canal lights")
    await story.contribute(h, "ade", "fix the canal lights!")
    await story.contribute(h, "kim", "Fix  the canal lights.")
    await story.contribute(h, "lena", "Plant trees")
    await h.driver.command(h.person("maya"), "next")
    release = next(i.text for i in h.shown("discord") if i.kind == "post" and "voting is open" in i.text)
    assert "2 ideas" in release
    assert len(re.findall(r"(?i)fix +the canal lights", release)) == 1
    assert "sent more than once" in release
    assert not re.search(r"\b(twice|three|3 times|2 people|3 people)\b", release)
    assert await h.scalar("select count(*) from ideas") == 2


CONTINUOUS = {
    "sector_min_voters": 2,
    "continuous": {"batch_min": 3, "min_interval_minutes": 10, "jitter_minutes": 5, "min_participants": 8},
}


async def continuous_round(h: Harness, extra: int) -> str:
    rid = await story.start(h, template="continuous")
    await story.link_discord(h)
    await story.join_all(h)
    for name in ("pia", "sam")[:extra]:
        who = h.person(name, "discord")
        form = await h.driver.command(who, "join")
        assert form is not None
        assert "A continuous round" in form.intro
        assert "batches of at least 3" in form.intro
        await h.driver.submit(who, form, {"sector": ""})
    for name, text in (("raj", "Fix potholes"), ("lena", "Plant trees"), ("ade", "Safe routes")):
        await story.contribute(h, name, text)
    await h.driver.command(h.person("maya"), "next")
    return rid


async def test_a_continuous_round_releases_new_ideas_in_shuffled_batches(engine: AsyncEngine) -> None:
    h = await make_harness(engine, rounds=CONTINUOUS)
    try:
        await continuous_round(h, extra=2)
        release = next(i.text for i in h.shown("slack") if i.kind == "post" and "voting is open" in i.text)
        assert "New ideas keep coming in while voting runs" in release
        raj = h.driver.people["raj"]
        assert "Add an idea" in {b.label for b in h.driver.buttons_seen_by(raj)}  # on the round card
        card = await h.driver.open_deck(raj)
        while ConsoleDriver.idea_on(card) is not None:
            await h.driver.press(raj, button(card, "Agree"))
            card = h.driver.card(raj)
        assert card is not None
        assert "check again later" in card.text

        await story.contribute(h, "kim", "Bins at bridges")
        assert "next shuffled batch of at least 3" in h.privates("kim")[-1]
        await story.contribute(h, "ola", "plant trees!")  # the same as an idea already shown
        await story.contribute(h, "maya", "Benches on the canal path")
        batches = "select count(*) from timers where kind = 'release_batch' and status = 'pending'"
        assert await h.scalar(batches) == 0  # two new ideas wait: fewer than three
        await story.contribute(h, "ade", "Warm spaces")
        assert await h.scalar(batches) == 1
        posts = len([i for i in h.shown("slack") if i.kind == "post"])
        h.clock.advance(minutes=9)
        await h.app.scheduler.run_once()
        await h.driver.settle()
        assert len([i for i in h.shown("slack") if i.kind == "post"]) == posts  # not before the interval
        h.clock.advance(minutes=7)
        await h.app.scheduler.run_once()
        await h.driver.settle()
        batch = [i for i in h.shown("slack") if i.kind == "post"][-1].text
        assert "3 new ideas" in batch
        assert "sent more than once" in batch  # the copy of "Plant trees" was merged
        assert sorted(re.findall(r"^Idea (\d+) ·", batch, flags=re.M)) == ["4", "5", "6"]
        # Someone who had finished gets the new ideas from their card.
        await h.driver.press(raj, button(card, "Check for new ideas"))
        card = h.driver.card(raj)
        assert ConsoleDriver.idea_on(card) in (4, 5, 6)
        assert card is not None
        assert "3 of 6 voted" in card.text
        await h.driver.command(h.person("maya"), "next")
        assert await h.scalar("select count(*) from ideas where status = 'pending'") == 0
    finally:
        await h.app.aclose()


async def test_continuous_mode_needs_enough_people_otherwise_ideas_close_as_usual(
    engine: AsyncEngine,
) -> None:
    h = await make_harness(engine, rounds=CONTINUOUS)
    try:
        await continuous_round(h, extra=0)  # six people: fewer than eight
        release = next(i.text for i in h.shown("slack") if i.kind == "post" and "voting is open" in i.text)
        assert "Too few people joined for a continuous round" in release
        raj = h.driver.people["raj"]
        assert await h.driver.command(raj, "contribute") is None
        assert "not possible in the Vote phase" in h.privates("raj")[-1]
    finally:
        await h.app.aclose()


async def test_a_large_deck_shows_each_idea_with_its_own_text_through_skip_vote_and_back(
    engine: AsyncEngine,
) -> None:
    """More ideas than a card reads at once (the deck then reads counts and texts in two steps)."""
    h = await make_harness(engine, rounds={"sector_min_voters": 2, "contributions_per_participant": 10})
    try:
        await story.start(h)
        await story.link_discord(h)
        await story.join_all(h)
        for name in story.IDEAS:
            for k in range(10):
                await story.contribute(h, name, f"Proposal {k} from {name}")
        await h.driver.command(h.person("maya"), "next")
        async with h.app.engine.connect() as conn:
            from sqlalchemy import text

            rows = await conn.execute(text("select number, text from ideas where status = 'released'"))
            texts = {int(n): str(t) for n, t in rows}
        assert len(texts) == 40
        raj = h.driver.people["raj"]
        card = await h.driver.open_deck(raj)
        seen: list[int] = []
        for step in ["Skip", "Agree", "Skip", "Disagree", "Back", "Pass", "Agree"]:
            idea = ConsoleDriver.idea_on(card)
            assert idea is not None
            assert texts[idea] in card.text, (idea, card.text)
            seen.append(idea)
            await h.driver.press(raj, button(card, step))
            card = h.driver.card(raj)
        assert seen[5] == seen[3]  # Back shows the idea just voted on, whose vote Pass then changes
        assert await choices(h) == {seen[1]: "agree", seen[3]: "pass", seen[6]: "agree"}
    finally:
        await h.app.aclose()
