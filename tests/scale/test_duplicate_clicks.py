"""The same click reaching two workers (a retrying proxy, a load balancer) is stored once, and it
never costs anyone else their ballot: every unrelated vote in either worker's batch is stored and
its sender told so; the person who clicked twice is told "recorded" once, and only once it is stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import commands as c
from bot.domain.deck import encode_trail
from bot.ids import ComponentId
from bot.messages import Card
from bot.persistence.db import make_sessionmaker
from bot.service.errors import ServiceUnavailable
from bot.service.ingest import GroupCommit
from tests.core import story
from tests.harness import Harness, make_harness


def privates(workers: list[Harness], name: str, text: str) -> int:
    """How many private replies saying ``text`` reached ``name``, whichever worker's relay sent them."""
    who = {name.capitalize(), f"U-{name}"}
    shown = [i for h in workers for i in h.shown() if i.kind == "private" and i.recipient in who]
    return sum(1 for i in shown if text in i.text)


async def test_the_same_click_on_two_workers_fails_no_ballot_of_either_batch(engine: AsyncEngine) -> None:
    first = await make_harness(engine)
    rid = await story.to_vote(first)
    second = await make_harness(engine, keys=first.keys, clock=first.clock)  # another worker, same keys
    for platform, port in first.ports.items():
        second.ports[platform].user_names.update(port.user_names)
    workers = [first, second]
    d = first.driver
    people = {name: d.people[name] for name, _p, _s in story.PEOPLE}

    # Raj's vote (idea 1) and Lena's rating of idea 2 each reach both workers, with the same request id.
    raj = replace(d.context(people["raj"]), request_id="slack:retried-click")
    lena = replace(d.context(people["lena"]), request_id="slack:view:retried-form")
    twice: list[Any] = [c.CastBallot(raj, rid, 1, "agree"), c.RateIdea(lena, rid, 2, 4, 5)]
    # Kim's deck click (idea 3, Agree) reaches both workers too: its answer is the next card.
    deck_click = ComponentId(rid, "v", ("3", "a", encode_trail(()))).encode()
    kim = d.context(people["kim"])
    # Everyone else votes on other ideas, each worker receiving some of those clicks at the same time.
    others = [n for n in people if n not in ("raj", "lena", "kim")]
    unrelated = {
        (name, idea): c.CastBallot(d.context(people[name]), rid, idea, "disagree")
        for name in others
        for idea in (1, 2, 3, 4)
    }

    async def send(h: Harness, command: Any) -> None:
        await h.app.core.handle(command)

    calls = []
    for i, h in enumerate(workers):
        calls += [send(h, command) for command in twice]
        calls.append(h.app.core.press(kim, deck_click))
        calls += [send(h, cmd) for k, cmd in enumerate(unrelated.values()) if k % 2 == i]
    results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not any(isinstance(r, ServiceUnavailable) for r in failed), "someone was told nothing was saved"
    assert failed == []
    for h in workers:
        await h.app.relay.drain()

    # Every unrelated vote is stored and its sender told so, once.
    stored = await first.scalar("select count(*) from ballots where choice = 'disagree'")
    assert stored == len(unrelated)
    for name in others:
        for idea in (1, 2, 3, 4):
            assert privates(workers, name, f"Your vote on Idea {idea} is recorded") == 1, (name, idea)
    # The clicks sent twice: stored once, and each told once.
    assert await first.scalar("select count(*) from ballots where choice = 'agree'") == 2  # Raj's and Kim's
    assert privates(workers, "raj", "Your vote on Idea 1 is recorded") == 1
    assert await first.scalar("select count(*) from ballots where urgency = 4 and impact = 5") == 1
    assert privates(workers, "lena", "Your rating of Idea 2 is recorded") == 1
    cards = [r for r in results if isinstance(r, Card)]
    assert len(cards) == 2
    for card in cards:  # each worker answered the click with Kim's next card, saying the vote is stored
        text = first.app.core.prompts.render_message(card.message, lambda t: t).text
        assert "Your vote on Idea 3 is recorded" in text or "Idea 3 was already recorded" in text
    assert await first.scalar("select count(*) from ballots") == len(unrelated) + 3
    await second.close()


async def test_a_batch_that_fails_is_tried_again_command_by_command(engine: AsyncEngine) -> None:
    """Whatever fails a batch (here one command that always fails), the others are stored."""
    sessions = make_sessionmaker(engine)
    attempts: list[list[str]] = []

    async def apply(_s: Any, commands: list[str]) -> list[str]:
        attempts.append(commands)
        if "bad" in commands:
            raise IntegrityError("insert", {}, Exception("a clash"))
        return [f"stored {cmd}" for cmd in commands]

    ingest = GroupCommit(sessions, apply, lambda: None, batch_max=10, wait_seconds=0.01)
    got = await asyncio.gather(*(ingest.submit(x) for x in ("a", "bad", "b")), return_exceptions=True)
    await ingest.aclose()
    assert got[0] == "stored a"
    assert got[2] == "stored b"
    assert isinstance(got[1], ServiceUnavailable), "only the bad command is refused"
    assert attempts[0] == ["a", "bad", "b"]
    assert ingest.split == 1
