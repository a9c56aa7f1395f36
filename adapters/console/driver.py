"""Drives the core as people on two simulated platforms would: the console REPL and `convene demo`
both act through this, so what they show is exactly what the platforms would be asked to show."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bot.app import App
from bot.domain.commands import Context
from bot.forms import Form
from bot.messages import Button
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
            workspace = "@me" if who.platform == "discord" else where.workspace_id
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
        form = await self.app.core.press(self.context(who, direct=direct), button.action_id)
        await self.settle()
        return form

    def buttons_seen_by(self, who: Person) -> list[Button]:
        """Buttons on the latest version of each message in this person's channel, their latest
        private reply, and the direct messages they were sent (reminders)."""
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
        out: list[Button] = []
        for item in [*directs, *latest.values(), *privates[-1:]]:
            out.extend(item.buttons)
        return out

    def find_button(self, who: Person, label: str, contains: str = "") -> Button:
        for b in reversed(self.buttons_seen_by(who)):
            if b.label.lower() == label.lower() and contains in b.action_id:
                return b
        raise LookupError(f"{who.name} sees no [{label}] button")
