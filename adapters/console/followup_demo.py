"""`convene demo --follow-up`: after the demo round closes, 120 simulated days of follow-up on a
simulated clock. Owners mark progress, one misses a due date, a metric is checked in twice, a pilot
is reviewed, and the process restarts once midway on the same database (down over a due time).

Everything goes through the same core, scheduler and relay as `convene run`; only the clock is
simulated. What it returns is written to followup.json.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from bot.app import App, build_app
from bot.config import AppConfig
from bot.keys import KeyStore
from bot.persistence.tables import ActionRow, CheckinRow, ConversationRow, GoalRow, SlotRow, TimerRow
from bot.ports import FixedClock
from bot.reports import round_report

from .driver import ConsoleDriver, Person
from .port import ConsolePort

DAYS = 120
RESTART_DOWN = 63  # the process is down on this day (Action 1's "due soon"), back the next day
CHECK_HOUR = 10  # each day's pass runs an hour after the reminders' hour (09:00)

Step = Callable[["FollowUpDemo"], Any]


class FollowUpDemo:
    """Lives the days after the close. ``people`` are (name, platform) of the demo's team."""

    def __init__(
        self,
        config: AppConfig,
        ports: dict[str, ConsolePort],
        keys: KeyStore,
        clock: FixedClock,
        people: list[tuple[str, str]],
        round_id: str,
        narrate: Callable[[str], None],
    ) -> None:
        self.config = config
        self.ports = ports
        self.keys = keys
        self.clock = clock
        self.people = people
        self.round_id = round_id
        self.narrate = narrate
        self.start = clock.now()
        self.day = 0
        self.restarts = 0
        self.reminder_to: dict[tuple[int, str], str] = {}  # (action number, kind) -> owner | conveners
        self.app: App | None = None
        self.driver: ConsoleDriver | None = None

    # --- the process ----------------------------------------------------------------------------

    def attach(self, app: App) -> None:
        self.app = app
        self.driver = ConsoleDriver(app, self.ports, list(self.config.console.conveners))
        for name, platform in self.people:
            self.driver.person(name, platform)

    async def restart(self) -> None:
        """Stop the process and start a new one on the same database (and the same platforms)."""
        assert self.app is not None
        await self.app.aclose()
        app = await build_app(self.config, dict(self.ports), keys=self.keys, clock=self.clock)
        self.restarts += 1
        self.attach(app)

    def who(self, name: str) -> Person:
        assert self.driver is not None
        return self.driver.people[name]

    async def live(self, day: int, busy: bool) -> None:
        """Move the clock to ``day`` (after its reminders' hour) and run one scheduler pass; the day
        is named in the transcript when something is due or someone acts (``busy``)."""
        assert self.app is not None
        assert self.driver is not None
        self.day = day
        self.clock.current = dt.datetime.combine(
            self.start.date() + dt.timedelta(days=day), dt.time(CHECK_HOUR), tzinfo=dt.UTC
        )
        async with self.app.sessions() as s:
            due = await s.scalar(
                select(func.count())
                .select_from(TimerRow)
                .where(TimerRow.status == "pending", TimerRow.due_at <= self.clock.now())
            )
        if due or busy:
            self.narrate(f"Day {day} ({self.clock.now().date()})")
        await self.app.scheduler.run_once()
        await self.driver.settle()
        await self.note_reminders()

    async def note_reminders(self) -> None:
        """Who each reminder sent today went to: the owner, or the conveners for an owner with no
        account (retention later forgets owners' references, so this is noted as it happens)."""
        assert self.app is not None
        today = self.clock.now().date()
        async with self.app.sessions() as s:
            for a in await s.scalars(select(ActionRow).where(ActionRow.round_id == self.round_id)):
                for kind, sent in (("due_soon", a.due_soon_sent_on), ("due", a.due_sent_on)):
                    if sent == today:
                        self.reminder_to[(a.number, kind)] = "owner" if a.owner_ref else "conveners"

    # --- what people do -------------------------------------------------------------------------

    async def click(self, name: str, label: str, contains: str) -> None:
        assert self.driver is not None
        who = self.who(name)
        await self.driver.press(who, self.driver.find_button(who, label, contains), direct=True)

    async def form(self, name: str, label: str, contains: str, values: dict[str, str]) -> None:
        assert self.driver is not None
        who = self.who(name)
        form = await self.driver.press(who, self.driver.find_button(who, label, contains), direct=True)
        assert form is not None, f"{name} got no form from [{label}]"
        await self.driver.submit(who, form, values, direct=True)

    async def command_form(self, name: str, text: str, changes: dict[str, str]) -> None:
        """A convener's form typed in the channel (edit a goal or an action), keeping what it shows."""
        assert self.driver is not None
        who = self.who(name)
        form = await self.driver.command(who, text)
        assert form is not None, f"{name} got no form for {text}"
        await self.driver.submit(who, form, {**{f.name: f.initial for f in form.fields}, **changes})

    async def play(self) -> None:
        script: dict[int, list[tuple[str, Step]]] = {
            0: [
                (
                    "Maya records where Goal 1's figures come from and asks for them every three months.",
                    lambda d: d.command_form(
                        "maya",
                        "editgoal 1",
                        {"data_source": "Schools' travel survey", "checkin": "quarterly"},
                    ),
                ),
                (
                    "Maya resources Action 1: a sponsor and what it has to work with.",
                    lambda d: d.command_form(
                        "maya",
                        "editaction 1",
                        {"sponsor": "Deputy mayor's office", "resources": "Two officers, a mapping budget"},
                    ),
                ),
            ],
            21: [
                (
                    "Kim, reminded three days ahead, clicks On track.",
                    lambda d: d.click("kim", "On track", ":st:3:"),
                )
            ],
            27: [
                (
                    "Kim missed the due date (the conveners heard once); she reports it done, late.",
                    lambda d: d.form(
                        "kim",
                        "Add a note",
                        ":upd:3",
                        {"status": "done", "note": "All 48 lamp posts surveyed; 21 need repair.", "due": ""},
                    ),
                )
            ],
            30: [
                (
                    "Maya, asked for Goal 2's metric, checks in a value.",
                    lambda d: d.form(
                        "maya", "Report the value", ":ci:2", {"value": "70", "note": "After repairs"}
                    ),
                )
            ],
            64: [
                (
                    "Maya reports for Raj (Highways), who has no account here.",
                    lambda d: d.form(
                        "maya",
                        "Add a note",
                        ":upd:1",
                        {"status": "on_track", "note": "Three of four schools mapped.", "due": ""},
                    ),
                )
            ],
            66: [
                ("On the due day, Maya marks Action 1 done.", lambda d: d.click("maya", "Done", ":st:1:done"))
            ],
            78: [
                (
                    "Sofia, reminded, flags her action at risk.",
                    lambda d: d.click("sofia", "At risk", ":st:2:"),
                )
            ],
            80: [
                (
                    "Sofia reports it done before its due date.",
                    lambda d: d.form(
                        "sofia",
                        "Add a note",
                        ":upd:2",
                        {"status": "done", "note": "32 volunteers signed up.", "due": ""},
                    ),
                )
            ],
            92: [
                (
                    "Maya checks in Goal 2's metric a second time.",
                    lambda d: d.form("maya", "Report the value", ":ci:2", {"value": "88"}),
                )
            ],
            95: [
                (
                    "The pilot's review date: Ade records the decision.",
                    lambda d: d.form(
                        "ade",
                        "Record the decision",
                        ":pilot:1",
                        {
                            "decision": "scale",
                            "note": "Four more schools asked to join the safe-routes pilot.",
                        },
                    ),
                )
            ],
        }
        self.narrate("Follow-up: 120 days on a simulated clock, one scheduler pass a day (after 09:00).")
        for day in range(DAYS + 1):
            if day == RESTART_DOWN:
                self.narrate(f"Day {day}: the process stops and is down all day, over a reminder's due time.")
                await self.restart()
                continue
            if day:
                await self.live(day, busy=day in script)
            else:
                self.narrate(f"Day 0 ({self.start.date()}): the round has just closed.")
            for step, run in script.get(day, []):
                self.narrate(step)
                await run(self)

    # --- what happened ----------------------------------------------------------------------------

    async def result(self) -> dict[str, Any]:
        assert self.app is not None
        start = self.start.date()

        def day(value: dt.date) -> int:
            return (value - start).days

        async with self.app.sessions() as s:
            actions = list(
                await s.scalars(
                    select(ActionRow).where(ActionRow.round_id == self.round_id).order_by(ActionRow.number)
                )
            )
            goals = {
                g.id: g for g in await s.scalars(select(GoalRow).where(GoalRow.round_id == self.round_id))
            }
            checkins = list(
                await s.scalars(
                    select(CheckinRow).where(CheckinRow.goal_id.in_(list(goals))).order_by(CheckinRow.day)
                )
            )
            convs = list(
                await s.scalars(select(ConversationRow).where(ConversationRow.round_id == self.round_id))
            )
            slots = {
                row.slot: row.message_id
                for row in await s.scalars(
                    select(SlotRow).where(SlotRow.slot.like(f"progress:{self.round_id}:%"))
                )
            }
        reminders = []
        for a in actions:
            for kind, sent in (("due_soon", a.due_soon_sent_on), ("due", a.due_sent_on)):
                if sent:
                    to = self.reminder_to[(a.number, kind)]
                    reminders.append(
                        {"action": f"Action {a.number}", "kind": kind, "day": day(sent), "to": to}
                    )
            if a.escalated_on:
                reminders.append(
                    {
                        "action": f"Action {a.number}",
                        "kind": "overdue_escalation",
                        "day": day(a.escalated_on),
                        "to": "conveners",
                    }
                )
        progress_posts = {}
        for conv in convs:
            message_id = slots.get(f"progress:{self.round_id}:{conv.id}")
            seen = Counter(
                i.kind for i in self.ports[conv.platform].shown if message_id and i.message_id == message_id
            )
            progress_posts[f"{conv.platform}:{conv.channel_id}"] = {
                "posted": seen["post"],
                "edits": seen["edit"],
            }
        report = await round_report(self.app.sessions, self.round_id)
        return {
            "days": DAYS,
            "restarts": self.restarts,
            "reminders": sorted(reminders, key=lambda r: (r["day"], r["action"])),
            "checkins": [
                {"goal": f"Goal {goals[c.goal_id].number}", "day": day(c.day), "value": c.value}
                for c in checkins
            ],
            "progress_posts": progress_posts,
            "pilot_reviews": [
                {"goal": f"Goal {g.number}", "day": day(g.pilot_decided_on), "decision": g.pilot_decision}
                for g in sorted(goals.values(), key=lambda g: g.number)
                if g.pilot_decision and g.pilot_decided_on
            ],
            "actions": [
                {
                    "title": a["title"],
                    "owner": a["owner"],
                    "sponsor": a["sponsor"],
                    "due": a["due"],
                    "status": a["status"],
                    "history": [
                        {
                            "day": day(dt.date.fromisoformat(n["day"])),
                            "status": n["status"],
                            "note": n["note"],
                        }
                        for n in a["history"]
                    ],
                }
                for a in report["actions"]
            ],
        }


def who_saw_what(ports: dict[str, ConsolePort], shown_from: dict[str, int]) -> str:
    """What reached each channel and each person during follow-up, one line each."""
    seen: dict[str, Counter[str]] = {}
    for name, port in ports.items():
        for item in port.shown[shown_from.get(name, 0) :]:
            where = item.channel if item.kind in ("post", "edit") else (item.recipient or "?")
            seen.setdefault(where, Counter())[_KINDS[item.kind]] += 1
    return "\n".join(
        f"  {where}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        for where, counts in sorted(seen.items())
    )


_KINDS = {"post": "posts", "edit": "edits", "direct": "direct messages", "private": "private replies"}
