"""`convene demo`: a scripted, whole round with 8 participants on two simulated platforms (and, with
``--follow-up``, 120 simulated days of following up its actions and goals)."""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.app import build_app
from bot.config import AppConfig, parse_config
from bot.keys import MemoryKeyStore
from bot.messages import Button
from bot.persistence.tables import RoundRow
from bot.ports import FixedClock
from bot.reports import report_csv, round_report

from .driver import ConsoleDriver
from .port import Shown, format_shown

TEAM = [  # name, platform, sector
    ("maya", "slack", "public_sector"),
    ("raj", "slack", "public_sector"),
    ("lena", "slack", "business"),
    ("tom", "slack", "academia"),
    ("ade", "discord", "resident"),
    ("sofia", "discord", "civil_society"),
    ("kim", "discord", "resident"),
    ("ola", "discord", "prefer_not_to_say"),
]
IDEAS = {
    "raj": [
        "Halve the time it takes to fix a reported pothole",
        "Open every school playground to the public at weekends",
    ],
    "lena": ["Plant 1,000 street trees in the three hottest neighbourhoods"],
    "tom": ["Publish monthly air-quality readings for every school street"],
    "ade": [
        "Safe walking routes to every primary school",
        "Open every school playground to the public at weekends",
    ],
    "sofia": ["A warm space in every ward from November to March"],
    "kim": ["Fix the broken street lights on the canal path within a month"],
    "ola": ["A free repair café in each library once a month"],
    "maya": ["Cut the waiting time for a youth-club place to under 4 weeks"],
}
# How each sector leans on ideas mentioning a word (probability of agreeing), else 0.55.
LEANINGS = {
    "school": 0.9,
    "street lights": 0.85,
    "trees": 0.8,
    "warm space": 0.75,
    "pothole": 0.7,
}


def demo_config(db_path: Path) -> AppConfig:
    return parse_config(
        {
            "database": {"url": f"sqlite+aiosqlite:///{db_path}"},
            "rounds": {"sector_min_voters": 2},
            "console": {"conveners": ["maya", "ade"]},
            "outbox": {"poll_seconds": 0.05},
        }
    )


async def run_demo(
    out_dir: Path, echo: Callable[[str], None] | None = None, seed: int = 7, *, follow_up: bool = False
) -> dict[str, Any]:
    """Play a whole round and write report.json, report.md and transcript.txt into ``out_dir``. With
    ``follow_up``, then 120 simulated days of follow-up (followup.json, followup_transcript.txt,
    goals.csv and actions.csv); the report's "followup" key holds what followup.json does."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    transcript: list[str] = []
    sink = [transcript]  # where lines go: the round's transcript, then the follow-up's

    hidden: set[str] = set()  # people whose private cards the transcript leaves out

    def show(item: Shown) -> None:
        if item.kind == "private" and item.recipient in hidden:
            return
        text = format_shown(item)
        sink[0].append(text)
        if echo:
            echo(text)

    def narrate(line: str) -> None:
        sink[0].append(f"\n# {line}")
        if echo:
            echo(f"\n# {line}")

    followed: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="convene-demo-") as tmp:
        config = demo_config(Path(tmp) / "demo.db")
        ports = ConsoleDriver.make_ports(show)
        clock = FixedClock(dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC))
        # Seeded keys: the per-person order of each voter's deck comes from their pseudonym.
        keys = MemoryKeyStore(random.Random(seed))
        app = await build_app(config, dict(ports), keys=keys, clock=clock)
        app.core.rng = random.Random(seed)
        rng = random.Random(seed)
        try:
            d = ConsoleDriver(app, ports, list(config.console.conveners))
            people = {name: d.person(name, platform) for name, platform, _ in TEAM}
            maya, ade = people["maya"], people["ade"]

            narrate("Maya, a city official, starts a round in Slack.")
            form = await d.command(maya, "start")
            assert form is not None
            await d.submit(
                maya,
                form,
                {
                    "title": "Common goals for safer, kinder streets",
                    "purpose": "Officials, businesses, charities and residents agree on two or three goals "
                    "for our streets next year, with numbers we can check, and who does what.",
                    "template": "standard",
                },
            )
            async with app.sessions() as s:
                code = await s.scalar(select(RoundRow.join_code))
            narrate("Ade, a community organiser, links the Discord channel with the join code.")
            await d.command(ade, f"link {code}")

            narrate("Everyone joins: they accept the charter and may declare a sector.")
            for name, _platform, sector in TEAM:
                form = await d.command(people[name], "join")
                assert form is not None
                await d.submit(people[name], form, {"sector": sector})

            narrate("People contribute ideas through the private form; nobody else sees them yet.")
            for name, texts in IDEAS.items():
                for text in texts:
                    form = await d.command(people[name], "contribute")
                    assert form is not None
                    await d.submit(people[name], form, {"text": text})

            narrate("Maya closes the contribute phase: ideas are released, shuffled, with no names.")
            await d.command(maya, "next")

            narrate(
                "Everyone presses Vote and gets a private deck: one idea at a time, agree, disagree "
                "or pass; some rate urgency and impact. Maya's and Ade's cards are shown; the others "
                "vote the same way on cards only they see."
            )
            async with app.sessions() as s:
                rnd = await s.scalar(select(RoundRow))
                assert rnd is not None
            report_now = await round_report(app.sessions, rnd.id)
            shown = {idea["label"]: idea["text"] for idea in report_now["ideas"]}
            for name, _platform, _sector in TEAM:
                who = people[name]
                hidden.clear()
                if name not in ("maya", "ade"):
                    hidden.add(name.capitalize())
                card = await d.open_deck(who)
                while (idea := d.idea_on(card)) is not None and card is not None:
                    p = next((v for k, v in LEANINGS.items() if k in shown[idea].lower()), 0.55)
                    roll = rng.random()
                    choice = "Agree" if roll < p else ("Pass" if roll < p + 0.1 else "Disagree")
                    if rng.random() < 0.3:
                        form = await d.press(who, _labelled(card, "Rate urgency & impact"))
                        assert form is not None
                        await d.submit(
                            who, form, {"urgency": str(rng.randint(2, 5)), "impact": str(rng.randint(2, 5))}
                        )
                    await d.press(who, _labelled(card, choice))
                    card = d.card(who)
            hidden.clear()

            narrate("Voting closes: ideas are ranked by agreement that holds across sectors.")
            await d.command(maya, "next")

            narrate("Maya turns the two ideas with the most common ground into goals with numbers.")
            report_now = await round_report(app.sessions, rnd.id)
            top = sorted(report_now["ideas"], key=lambda i: -i["score"])[:2]
            goals = [
                (
                    "Safe routes to school",
                    "Children walk or cycle to school safely",
                    "Primary schools with a signed safe route",
                    "schools",
                    "4",
                    "32",
                    "2027-09-01",
                    "yes",
                    "2027-03-01",
                ),
                (
                    "Light the canal path",
                    "People feel safe on the canal path after dark",
                    "Working street lights on the canal path",
                    "%",
                    "55",
                    "100",
                    "2027-02-28",
                    "no",
                    "",
                ),
            ]
            for idea, g in zip(top, goals, strict=True):
                form = await d.press(
                    maya, d.find_button(maya, f"Make Idea {idea['label']} a goal", f":goal:{idea['label']}")
                )
                assert form is not None
                fields = [f.name for f in form.fields if f.name != "idea"]  # the form's own order
                await d.submit(maya, form, {"idea": str(idea["label"]), **dict(zip(fields, g, strict=True))})

            narrate("On to actions: each goal gets actions with an owner and a due date.")
            await d.command(maya, "next")
            for goal, title, owner, due in [
                ("1", "Map the routes with parents at four pilot schools", "Raj (Highways)", "2027-01-31"),
                ("1", "Run a walking-bus volunteer drive", "", "2027-02-15"),
                ("2", "Survey every lamp post on the canal path", "", "2026-12-20"),
            ]:
                form = await d.command(maya, f"action {goal}")
                assert form is not None
                await d.submit(maya, form, {"goal": goal, "title": title, "owner": owner, "due": due})
            narrate('Volunteers pick up the open actions with "I\'ll take this".')
            await d.press(people["sofia"], d.find_button(people["sofia"], "I'll take this", ":take:2"))
            await d.press(people["kim"], d.find_button(people["kim"], "I'll take this", ":take:3"))

            narrate("Maya closes the round: the summary goes to both channels.")
            await d.command(maya, "close")
            report = await round_report(app.sessions, rnd.id)
            if follow_up:
                from .followup_demo import FollowUpDemo, who_saw_what

                sink[0] = []
                seen_before = {name: len(port.shown) for name, port in ports.items()}
                team = [(name, platform) for name, platform, _ in TEAM]
                followup = FollowUpDemo(config, ports, keys, clock, team, rnd.id, narrate)
                followup.attach(app)
                try:
                    await followup.play()
                finally:
                    assert followup.app is not None
                    app = followup.app  # the process since the restart: closed below
                followed = await followup.result()
                report = await round_report(app.sessions, rnd.id)
                narrate(
                    "What each channel and person saw during follow-up:\n" + who_saw_what(ports, seen_before)
                )
                fu_lines = sink[0]
        finally:
            await app.aclose()

    report["seconds"] = round(time.perf_counter() - started, 3)
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "report.md").write_text(report_markdown(report), encoding="utf-8")
    (out_dir / "transcript.txt").write_text("\n".join(transcript).lstrip() + "\n", encoding="utf-8")
    if followed is not None:
        followed["seconds"] = report["seconds"]
        report["followup_run"] = followed
        (out_dir / "followup.json").write_text(
            json.dumps(followed, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (out_dir / "followup_transcript.txt").write_text(
            "\n".join(fu_lines).lstrip() + "\n", encoding="utf-8"
        )
        for table in ("goals", "actions"):
            (out_dir / f"{table}.csv").write_text(report_csv(report, table), encoding="utf-8")
    charts = [item.image for port in ports.values() for item in port.shown if item.image]
    if charts:
        (out_dir / charts[0].filename).write_bytes(charts[0].data)
    return report


def _labelled(card: Shown, label: str) -> Button:
    return next(b for b in card.buttons if b.label == label)


def report_markdown(report: dict[str, Any]) -> str:
    from bot.reports import render_report_md

    return render_report_md(report)
