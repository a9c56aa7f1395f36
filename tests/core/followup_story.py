"""A round that closes with goals and owned actions, then days of follow-up on a simulated clock."""

from __future__ import annotations

import datetime as dt
import re

from bot.service.scheduler import DeadlineScheduler
from tests.core import story
from tests.harness import Harness

START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)  # the harness clock: the round closes now


async def closed_round(h: Harness, *, kim_due: str = "2026-12-20", raj_due: str = "2027-01-31") -> str:
    """Goal 1 (a pilot, reviewed 2027-03-01) and Goal 2; Action 1 owned by the named "Parks team",
    Action 2 taken by Kim (Discord), Action 3 taken by Raj (Slack). Closed at START."""
    rid = await story.to_vote(h)
    for name, _p, _s in story.PEOPLE:
        for idea in (1, 2):
            await story.vote(h, name, idea, "Agree")
    maya = h.person("maya")
    await h.driver.command(maya, "next")
    for values in (
        await story.goal_values(pilot="yes", review_date="2027-03-01"),
        await story.goal_values(
            title="Light the canal path",
            metric="Working lights",
            unit="%",
            baseline="55",
            target="100",
            deadline="2027-02-28",
        ),
    ):
        form = await h.driver.command(maya, "goal")
        assert form is not None
        await h.driver.submit(maya, form, values)
    await h.driver.command(maya, "next")
    for goal, title, owner, due in (
        ("1", "Map the routes", "Parks team", "2027-01-15"),
        ("2", "Survey every lamp post", "", kim_due),
        ("1", "Run a walking bus", "", raj_due),
    ):
        form = await h.driver.command(maya, f"action {goal}")
        assert form is not None
        await h.driver.submit(maya, form, {"goal": goal, "title": title, "owner": owner, "due": due})
    for name, number in (("kim", 2), ("raj", 3)):
        who = h.driver.people[name]
        await h.driver.press(who, h.driver.find_button(who, "I'll take this", f":take:{number}"))
    await h.driver.command(maya, "close")
    return rid


async def days(h: Harness, n: int, scheduler: DeadlineScheduler | None = None) -> None:
    """Live ``n`` days, one scheduler pass (and delivery) an hour after each day's reminder hour."""
    scheduler = scheduler or h.app.scheduler
    for _ in range(n):
        h.clock.advance(days=1)
        await scheduler.run_once()
        await h.driver.settle()


def day_of(h: Harness) -> int:
    return (h.clock.now().date() - START.date()).days


def directs(h: Harness, name: str, pattern: str = "") -> list[str]:
    """Direct messages ``name`` received (reminders, escalations, check-ins, reviews)."""
    return [
        i.text
        for i in h.shown()
        if i.kind == "direct" and i.recipient == name.capitalize() and re.search(pattern, i.text, re.S)
    ]
