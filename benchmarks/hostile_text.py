# ruff: noqa: E402  (imports follow the sys.path line so the script runs from anywhere)
"""Hostile text through both platforms: counts of what the bot would post that carries a live link it
did not write, a ping or mention, a hidden (bidi, control, invisible) character, or markup made of
what a person typed. Every count should be 0.

Two runs over the same seeded inputs (tests/hostile_text.py: the threat model's injection matrix,
both markup dialects, emoji codes, random troublesome code points):

1. **templates**: each input in every template slot where people's text lands (ideas, goal fields,
   titles and purposes, display names, echoes), through the prompts, each port's real escape and
   its real payload builder (Slack Block Kit; Discord chunks and send arguments). The same run as
   the slow test in tests/adapters/test_user_text.py.
2. **core**: whole rounds played through the core (forms, validation and canonical text, the outbox,
   the relay) by people on a "slack" and a "discord" channel whose ports use the real escape and
   payload builders and judge every payload they are handed: public posts and edits, private replies,
   direct messages, the voting deck's cards (one person on each platform votes on every idea), and
   the forms' intros as each platform shows them (modal blocks, modal text display). Inputs are used
   as round titles and purposes, ideas, typed subcommands, goal and action fields (also in forms
   refused with an echo of what was typed), and people's display names.

Neither run talks to Slack or Discord: what a person sees is judged by the platforms' rules as
modelled in tests/platform_fakes/markup.py (end-to-end runs through the adapters and the fake servers
are tests in tests/adapters/{slack,discord}).

    .venv/bin/python benchmarks/hostile_text.py [--inputs 10000] [--seed 9] [--skip-core]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)

from adapters.console.driver import ConsoleDriver, Person
from adapters.console.port import ConsolePort
from adapters.discord import render
from adapters.discord.port import _send_kwargs
from adapters.slack.app import form_view
from adapters.slack.port import escape as slack_escape
from adapters.slack.port import render_messages
from bot.app import build_app
from bot.config import parse_config
from bot.forms import Form
from bot.keys import MemoryKeyStore
from bot.messages import Rendered
from bot.ports import FixedClock
from bot.refs import ConversationRef, Platform, UserRef
from bot.sanitize import display_name
from tests.hostile_text import (
    PROBLEM_KINDS,
    SLOTS,
    discord_problems,
    hostile_inputs,
    problems,
    slack_problems,
)


def report(title: str, found: Counter[tuple[str, str]], judged: Counter[str], seconds: float) -> None:
    print(f"\n== {title} ({seconds:.1f} s)")
    print("  payloads judged: " + ", ".join(f"{k} {v:,}" for k, v in sorted(judged.items())))
    for platform in ("slack", "discord"):
        counts = ", ".join(f"{kind} {found[platform, kind]}" for kind in PROBLEM_KINDS)
        print(f"  {platform:8} {counts}")


def templates_run(inputs: list[str]) -> None:
    start = time.perf_counter()
    found: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], tuple[str, str, str]] = {}
    for value in inputs:
        for template, kind, detail in problems(value, SLOTS):
            key = (detail.split(":")[0].split()[0], kind)
            found[key] += 1
            first.setdefault(key, (template, detail, value))
    judged = Counter({"inputs": len(inputs), "templates per input": len(SLOTS)})
    report(
        f"{len(inputs):,} inputs x {len(SLOTS)} templates, both platforms",
        found,
        judged,
        time.perf_counter() - start,
    )
    for key, example in first.items():
        print(f"  first {key}: {example!r}")


# --- whole rounds through the core ------------------------------------------------------------


class JudgingPort(ConsolePort):
    """A console port (the driver reads what it shows) that escapes as the platform does and judges
    the payload the platform's adapter would build from every message it is handed."""

    found: Counter[tuple[str, str]]
    judged: Counter[str]

    def escape(self, text: str) -> str:
        return slack_escape(text) if self.platform == Platform.SLACK else render.escape(text)

    def judge(self, message: Rendered, where: str) -> None:
        if self.platform == Platform.SLACK:
            for text, blocks in render_messages(message):
                self.count(where, slack_problems(text, blocks))
        else:
            for part in render.chunk(message):
                kw = _send_kwargs(part, None)
                body = {"content": part.content, "allowed_mentions": kw["allowed_mentions"].to_dict()}
                self.count(where, discord_problems(body))

    def judge_form(self, form: Form) -> None:
        if self.platform == Platform.SLACK:
            view = form_view(form, "C1", lambda group, key: key)
            self.count("modal", slack_problems("", view["blocks"]))
        else:
            for page in render.form_pages(form):
                modal = render.FormModal(form.title, form.form_id, page, {}).to_dict()
                for c in modal["components"]:
                    if c.get("type") == 10:
                        self.count(
                            "modal",
                            discord_problems({"content": c["content"], "allowed_mentions": {"parse": []}}),
                        )
            self.count(
                "modal",
                discord_problems(
                    {"content": render.intro_text(form.intro), "allowed_mentions": {"parse": []}}
                ),
            )

    def count(self, where: str, found: list[tuple[str, str]]) -> None:
        self.judged[f"{self.platform} {where}"] += 1
        for kind, _detail in found:
            self.found[str(self.platform), kind] += 1

    async def post(self, to: ConversationRef, message: Rendered) -> str:
        self.judge(message, "public")
        return await super().post(to, message)

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None:
        self.judge(message, "public")
        await super().edit(to, message_id, message)

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, reply_handle: str | None
    ) -> None:
        self.judge(message, "private")
        await super().post_private(to, user_id, message, reply_handle)

    async def send_direct(self, workspace_id: str, user_id: str, message: Rendered) -> str:
        self.judge(message, "private")
        return await super().send_direct(workspace_id, user_id, message)

    def show_card(self, to: ConversationRef, user_id: str, message: Rendered, *, replace: bool) -> None:
        """A deck card, as each adapter answers a click: on Slack the response_url's message (the
        first one built, in place of the card clicked), on Discord one message. (The Discord adapter
        marks values so that an over-long card shortens only them; tests/adapters/test_user_text.py
        checks that path. Here the card is judged as rendered with the port's escape.)"""
        if self.platform == Platform.SLACK:
            pieces = render_messages(message)
            for text, blocks in pieces[:1] if replace else pieces:
                self.count("card", slack_problems(text, blocks))
        else:
            body = {"content": render.card(message).content, "allowed_mentions": {"parse": []}}
            self.count("card", discord_problems(body, ("users",)))
        super().show_card(to, user_id, message, replace=replace)


@dataclass
class Named(Person):
    """Someone whose profile name is hostile; adapters canonicalise it as here."""

    shown_as: str = ""

    @property
    def ref(self) -> UserRef:
        base = super().ref
        return UserRef(base.platform, base.workspace_id, base.user_id, display_name(self.shown_as))


async def core_run(inputs: list[str], folder: Path) -> None:
    start = time.perf_counter()
    found: Counter[tuple[str, str]] = Counter()
    judged: Counter[str] = Counter()
    config = parse_config(
        {
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'hostile.db'}"},
            "console": {"conveners": ["maya", "ade"]},
            "rounds": {"sector_min_voters": 2, "contributions_per_participant": 5},
        }
    )
    ports = ConsoleDriver.make_ports()
    judging: dict[str, ConsolePort] = {}
    for name, port in ports.items():
        jp = JudgingPort(port.platform, port.channel_names)
        jp.found, jp.judged = found, judged
        judging[name] = jp
    app = await build_app(
        config,
        dict(judging),
        keys=MemoryKeyStore(),
        clock=FixedClock(dt.datetime(2026, 11, 26, 9, tzinfo=dt.UTC)),
    )
    d = ConsoleDriver(app, judging, ["maya", "ade"])
    maya, ade = d.person("maya", "slack"), d.person("ade", "discord")
    values = iter(inputs)
    used = 0
    rounds = 0

    def take() -> str:
        nonlocal used
        value = next(values)
        used += 1
        return value

    async def form(who: Person, line: str) -> Form | None:
        f = await d.command(who, line)
        if f is not None:
            port = judging[who.platform]
            assert isinstance(port, JudgingPort)
            port.judge_form(f)
        return f

    try:
        while True:
            f = await form(maya, "start")
            assert f is not None
            await d.submit(
                maya, f, {"title": "R " + take()[:150], "purpose": "P " + take(), "template": "standard"}
            )
            code = re.findall(
                r"\b[A-Z2-9]{8}\b", "\n".join(s.text for s in judging["slack"].shown if s.kind == "private")
            )[-1]
            await d.command(ade, f"link {code}")
            people = []
            for i in range(4):
                p = Named(f"r{rounds}p{i}", ("slack", "discord")[i % 2], shown_as=take())
                d.people[p.name] = p
                judging[p.platform].user_names[f"U-{p.name}"] = p.name.capitalize()  # as d.person does
                people.append(p)
                f = await form(p, "join")
                if f is not None:
                    await d.submit(p, f, {"sector": ""})
            for p in people:
                await d.command(p, take())  # whatever they type: a subcommand we do not know, mostly
                for _ in range(3):
                    f = await form(p, "contribute")
                    if f is not None:
                        await d.submit(p, f, {"text": take()})
            await d.command(maya, "next")
            for voter in people[:2]:  # one on each platform: every idea on a deck card
                card = await d.open_deck(voter)
                while d.idea_on(card) is not None and card is not None:
                    await d.press(voter, next(b for b in card.buttons if b.label == "Agree"))
                    card = d.card(voter)
            await d.command(maya, "next")
            f = await form(maya, "goal 1")
            if f is None:  # no idea was valid: the round could not reach goals
                await d.command(maya, "cancel")
                continue
            goal = {"idea": "1", "title": "G " + take()[:150], "outcome": "O " + take(), "unit": "u"}
            goal["metric"] = "M " + take()[:150]
            await d.submit(
                maya,
                f,
                goal
                | {
                    "baseline": "not a number " + take(),
                    "target": "2",
                    "deadline": "2027-06-30",
                    "pilot": "no",
                },
            )
            await d.submit(
                maya, f, goal | {"baseline": "0", "target": "2", "deadline": "2027-06-30", "pilot": "no"}
            )
            await d.command(maya, "next")
            f = await form(maya, "action 1")
            if f is None:
                await d.command(maya, "cancel")
                continue
            await d.submit(
                maya, f, {"goal": "1", "title": "A " + take()[:150], "owner": take(), "due": "2027-01-31"}
            )
            await d.submit(
                maya, f, {"goal": "1", "title": "A " + take()[:150], "owner": "", "due": "2027-01-31"}
            )
            volunteer = people[rounds % len(people)]
            await d.press(volunteer, d.find_button(volunteer, "I'll take this"))
            await d.command(maya, "close")
            rounds += 1
    except StopIteration:
        pass
    await app.aclose()
    judged["inputs"] = used
    judged["rounds"] = rounds
    report(
        f"{used:,} inputs in {rounds} whole rounds through the core, both platforms",
        found,
        judged,
        time.perf_counter() - start,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--skip-core", action="store_true")
    args = ap.parse_args()
    inputs = list(hostile_inputs(args.inputs, args.seed))
    print(f"{len(inputs):,} hostile inputs (seed {args.seed}), e.g. {inputs[0]!r}")
    templates_run(inputs)
    if not args.skip_core:
        shm = Path("/dev/shm")  # a database in memory where there is one: this run is about text
        with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
            asyncio.run(core_run(inputs, Path(tmp)))


if __name__ == "__main__":
    main()
