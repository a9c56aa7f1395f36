"""Drives the core as people on two simulated platforms would: the console REPL and `convene demo`
both act through this, so what they show is exactly what the platforms would be asked to show."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bot.app import App
from bot.domain.accountability import DISCORD_DM
from bot.domain.commands import Context
from bot.forms import Form
from bot.messages import Button, Card
from bot.refs import ConversationRef, Platform, UserRef
from bot.service.textcmd import run_text

from .port import ConsolePort, Shown

# The two simulated channels: officials in a Slack workspace, residents in a Discord guild.
CHANNELS = {
    "slack": ConversationRef(Platform.SLACK, "T-city-hall", "C-city-goals"),
    "discord": ConversationRef(Platform.DISCORD, "G-neighbours", "D-common-goals"),
}
CHANNEL_NAMES = {"slack": "slack #city-goals", "discord": "discord #common-goals"}


@dataclass
class Person:
    name: str
    platform: str  # "slack" | "discord"

    @property
    def ref(self) -> UserRef:
        where = CHANNELS[self.platform]
        return UserRef(where.platform, where.workspace_id, f"U-{self.name}", self.name.capitalize())


class ConsoleDriver:
    def __init__(self, app: App, ports: dict[str, ConsolePort], conveners: list[str]) -> None:
        self.app = app
        self.app.relay.concurrency = 1  # one terminal: show things in the order they were queued
        self.ports = ports
        self.conveners = set(conveners)
        self.people: dict[str, Person] = {}
        self._request = 0
        # Request ids are inbox keys: a second console (or a restart) on the same database must not
        # reuse the first one's, or its commands would be taken for retries and dropped.
        self._session = secrets.token_hex(4)

    @staticmethod
    def make_ports(echo: Callable[[Shown], None] | None = None) -> dict[str, ConsolePort]:
        ports = {}
        for name, where in CHANNELS.items():
            ports[name] = ConsolePort(where.platform, {where.channel_id: CHANNEL_NAMES[name]}, echo=echo)
        return ports

    def person(self, name: str, platform: str | None = None) -> Person:
        name = name.lower()
        if name not in self.people:
            if platform not in CHANNELS:
                raise ValueError(f"say which platform {name} is on: slack or discord")
            assert platform is not None
            self.people[name] = Person(name, platform)
            self.ports[platform].user_names[f"U-{name}"] = name.capitalize()
        return self.people[name]

    def context(self, who: Person, *, direct: bool = False) -> Context:
        """``direct``: acting from the person's DM with the bot (a reminder's buttons), which no
        round is linked to; a Discord DM carries no guild, as on the platform."""
        self._request += 1
        actor, where = who.ref, CHANNELS[who.platform]
        if direct:
            workspace = DISCORD_DM if who.platform == "discord" else where.workspace_id
            actor = UserRef(actor.platform, workspace, actor.user_id, actor.display_name)
            where = ConversationRef(where.platform, workspace, f"DM-{who.name}")
        return Context(
            actor=actor,
            where=where,
            request_id=f"console:{self._session}:{self._request}",
            is_convener=who.name in self.conveners,
        )

    async def settle(self) -> None:
        """Deliver everything queued, as the relay would in the background."""
        await self.app.relay.drain()

    async def command(self, who: Person, text: str) -> Form | None:
        form = await run_text(self.app.core, self.context(who), text)
        await self.settle()
        return form

    async def submit(self, who: Person, form: Form, values: dict[str, str], *, direct: bool = False) -> None:
        await self.app.core.submit_form(self.context(who, direct=direct), form.form_id, values)
        await self.settle()

    async def press(self, who: Person, button: Button, *, direct: bool = False) -> Form | None:
        """A click. A private card (the voting deck) is shown at once, as the platforms show it
        through the click itself; a form is returned for the caller to fill in."""
        answer = await self.app.core.press(self.context(who, direct=direct), button.action_id)
        if isinstance(answer, Card):
            port = self.ports[who.platform]
            rendered = self.app.core.prompts.render_message(answer.message, port.escape)
            port.show_card(CHANNELS[who.platform], who.ref.user_id, rendered, replace=answer.replace)
            answer = None
        await self.settle()
        return answer

    def buttons_seen_by(self, who: Person) -> list[Button]:
        """Buttons on the latest version of each message in this person's channel, their latest
        private reply, their deck card, and the direct messages they were sent (reminders)."""
        port = self.ports[who.platform]
        latest: dict[str, Shown] = {}
        privates: list[Shown] = []
        directs: list[Shown] = []
        for item in port.shown:
            if item.kind in ("private", "direct"):
                if item.recipient == who.name.capitalize():
                    (privates if item.kind == "private" else directs).append(item)
            else:
                latest[item.message_id] = item
        card = self.card(who)
        seen = [*directs, *latest.values(), *privates[-1:]]
        if card is not None and card not in seen:
            seen.append(card)
        return [b for item in seen for b in item.buttons]

    # --- the voting deck ---------------------------------------------------------------------

    def card(self, who: Person) -> Shown | None:
        """The deck card this person sees now: their latest private card from the deck (a card
        with deck buttons, or one shown in place of a card), if any."""
        for item in reversed(self.ports[who.platform].shown):
            mine = item.kind == "private" and item.recipient == who.name.capitalize()
            if mine and (item.in_place or any(_deck_verb(b) for b in item.buttons)):
                return item
        return None

    @staticmethod
    def idea_on(card: Shown | None) -> int | None:
        """The idea a card shows (its vote buttons carry it), or None (done, closed)."""
        for b in card.buttons if card else ():
            parts = b.action_id.split(":")
            if len(parts) > 3 and parts[2] == "v":
                return int(parts[3])
        return None

    async def open_deck(self, who: Person) -> Shown | None:
        """Press the "Vote" button this person sees (on a release post or the round card)."""
        await self.press(who, self.find_button(who, "Vote", ":deck"))
        return self.card(who)

    async def vote_on(self, who: Person, idea: int, choice: str) -> Shown | None:
        """Vote ``choice`` ("Agree", "Disagree", "Pass") on ``idea`` through the deck, as a person
        would: Skip until it shows, or Back to it when it was voted on before."""
        card = self.card(who) or await self.open_deck(who)
        seen: set[int | None] = set()
        for _ in range(200):
            on = self.idea_on(card)
            if on == idea and card is not None:
                await self.press(who, _button(card, choice))
                return self.card(who)
            labels = {b.label for b in card.buttons} if card else set()
            if on in seen or on is None:
                if "Back" not in labels:
                    raise LookupError(f"{who.name} cannot reach Idea {idea} in the deck")
                await self.press(who, _button(card, "Back"))
            else:
                seen.add(on)
                await self.press(who, _button(card, "Skip" if "Skip" in labels else "Next"))
            card = self.card(who)
        raise LookupError(f"{who.name} never saw Idea {idea} in the deck")

    def find_button(self, who: Person, label: str, contains: str = "") -> Button:
        for b in reversed(self.buttons_seen_by(who)):
            if b.label.lower() == label.lower() and contains in b.action_id:
                return b
        raise LookupError(f"{who.name} sees no [{label}] button")


def _deck_verb(b: Button) -> bool:
    parts = b.action_id.split(":")
    return len(parts) > 2 and parts[2] in ("v", "dk")


def _button(card: Shown | None, label: str) -> Button:
    for b in card.buttons if card else ():
        if b.label.lower() == label.lower():
            return b
    raise LookupError(f"the card has no [{label}] button")
