"""Steps of a round, as people take them, for the core's tests."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot.persistence.tables import RoundRow
from tests.harness import Harness

PEOPLE = [
    ("maya", "slack", "public_sector"),
    ("raj", "slack", "public_sector"),
    ("lena", "slack", "business"),
    ("ade", "discord", "resident"),
    ("kim", "discord", "resident"),
    ("ola", "discord", None),
]
IDEAS = {
    "raj": ["Fix potholes within a week"],
    "lena": ["Plant 1,000 street trees"],
    "ade": ["Safe walking routes to every school"],
    "kim": ["Light the canal path"],
}


async def start(h: Harness, **values: str) -> str:
    maya = h.person("maya", "slack")
    form = await h.driver.command(maya, "start")
    assert form is not None
    await h.driver.submit(
        maya, form, {"title": "Safer streets", "purpose": "Agree goals for our streets", **values}
    )
    async with h.app.sessions() as s:
        rnd = await s.scalar(select(RoundRow))
    assert rnd is not None
    return rnd.id


async def join_code(h: Harness) -> str:
    async with h.app.sessions() as s:
        code = await s.scalar(select(RoundRow.join_code))
    assert code
    return code


async def link_discord(h: Harness) -> None:
    await h.driver.command(h.person("ade", "discord"), f"link {await join_code(h)}")


async def join_all(h: Harness) -> None:
    for name, platform, sector in PEOPLE:
        who = h.person(name, platform)
        form = await h.driver.command(who, "join")
        assert form is not None, h.privates(name)
        await h.driver.submit(who, form, {"sector": sector or ""})


async def contribute(h: Harness, name: str, text: str) -> None:
    who = h.driver.people[name]
    form = await h.driver.command(who, "contribute")
    assert form is not None, h.privates(name)
    await h.driver.submit(who, form, {"text": text})


async def contribute_all(h: Harness) -> None:
    for name, texts in IDEAS.items():
        for text in texts:
            await contribute(h, name, text)


async def vote(h: Harness, name: str, idea: int, choice: str) -> None:
    """``name`` votes ``choice`` on ``idea`` through their private deck."""
    await h.driver.vote_on(h.driver.people[name], idea, choice)


def released(h: Harness) -> dict[str, int]:
    """Each released idea's number, as the release list shows it ("Idea 7 · text")."""
    text = h.public_text()
    return {idea: int(n) for n, idea in re.findall(r"^Idea (\d+) · ([^\n]*)$", text, flags=re.M)}


async def to_vote(h: Harness) -> str:
    rid = await start(h)
    await link_discord(h)
    await join_all(h)
    await contribute_all(h)
    await h.driver.command(h.person("maya"), "next")
    return rid


async def goal_values(**over: Any) -> dict[str, str]:
    values = {
        "title": "Safe routes",
        "outcome": "Children walk to school safely",
        "metric": "Schools with a safe route",
        "unit": "schools",
        "baseline": "4",
        "target": "32",
        "deadline": "2027-09-01",
        "pilot": "no",
        "review_date": "",
    }
    values.update(over)
    return values


async def to_close(
    h: Harness, *, volunteer: str = "kim", due: str = "2027-01-31", deadline: str = "2027-09-01"
) -> str:
    """A whole round: everyone votes, one goal, one action taken by ``volunteer``, closed."""
    rid = await to_vote(h)
    for n in range(1, 5):
        for name, _platform, _sector in PEOPLE:
            await vote(h, name, n, "Agree")
    maya = h.person("maya")
    await h.driver.command(maya, "next")
    form = await h.driver.command(maya, "goal")
    assert form is not None
    await h.driver.submit(maya, form, await goal_values(deadline=deadline))
    await h.driver.command(maya, "next")
    form = await h.driver.command(maya, "action 1")
    assert form is not None
    await h.driver.submit(maya, form, {"goal": "1", "title": "Map the routes", "owner": "", "due": due})
    who = h.driver.people[volunteer]
    await h.driver.press(who, h.driver.find_button(who, "I'll take this", ":take:1"))
    await h.driver.command(maya, "close")
    return rid
