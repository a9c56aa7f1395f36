"""A ChatPort that writes to an in-memory transcript (and optionally the terminal)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.messages import Attachment, Button, Rendered
from bot.refs import ConversationRef, Platform

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)


def plain(text: str) -> str:
    """The neutral markup shown as plain terminal text."""
    return _BOLD.sub(r"\1", text)


@dataclass
class Shown:
    """One thing a person could see: a post, an edit, or a private reply."""

    channel: str
    kind: str  # post | edit | private | direct
    text: str
    buttons: tuple[Button, ...]
    recipient: str | None = None
    message_id: str = ""
    image: Attachment | None = None
    in_place: bool = False  # a private card shown in place of the one clicked (the voting deck)


@dataclass
class ConsolePort:
    """Simulates one platform. Channels are named by ``channel_names`` for the transcript."""

    platform: Platform
    channel_names: dict[str, str] = field(default_factory=dict)
    user_names: dict[str, str] = field(default_factory=dict)
    echo: Callable[[Shown], None] | None = None
    shown: list[Shown] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def escape(self, text: str) -> str:
        return text  # a terminal has no markup to inject into

    def _record(self, item: Shown) -> None:
        self.shown.append(item)
        if self.echo:
            self.echo(item)

    def _channel(self, to: ConversationRef) -> str:
        return self.channel_names.get(to.channel_id, f"{self.platform}:{to.channel_id}")

    async def post(self, to: ConversationRef, message: Rendered, *, key: str | None = None) -> str:
        mid = f"{self.platform}-{next(self._ids)}"
        shown = Shown(self._channel(to), "post", plain(message.text), message.buttons, message_id=mid)
        shown.image = message.image
        self._record(shown)
        return mid

    async def edit(self, to: ConversationRef, message_id: str, message: Rendered) -> None:
        self._record(
            Shown(self._channel(to), "edit", plain(message.text), message.buttons, message_id=message_id)
        )

    async def post_private(
        self, to: ConversationRef, user_id: str, message: Rendered, reply_handle: str | None
    ) -> None:
        who = self.user_names.get(user_id, user_id)
        self._record(Shown(self._channel(to), "private", plain(message.text), message.buttons, recipient=who))

    def show_card(self, to: ConversationRef, user_id: str, message: Rendered, *, replace: bool) -> None:
        """A private card answered through the click (not a relay delivery): in place of the card
        clicked, or new when the click came from a public post."""
        who = self.user_names.get(user_id, user_id)
        text, buttons = plain(message.text), message.buttons
        self._record(Shown(self._channel(to), "private", text, buttons, recipient=who, in_place=replace))

    async def send_direct(
        self, workspace_id: str, user_id: str, message: Rendered, *, key: str | None = None
    ) -> str:
        who = self.user_names.get(user_id, user_id)
        mid = f"{self.platform}-dm-{next(self._ids)}"
        self._record(
            Shown("direct", "direct", plain(message.text), message.buttons, recipient=who, message_id=mid)
        )
        return mid


def format_shown(item: Shown) -> str:
    head = {
        "post": f"[{item.channel}]",
        "edit": f"[{item.channel}] (updated)",
        "private": f"[{item.channel}] (only {item.recipient} sees this"
        + ("; in place of the card clicked)" if item.in_place else ")"),
        "direct": f"[DM to {item.recipient}]",
    }[item.kind]
    lines = [head, *("  " + line if line else "" for line in item.text.splitlines())]
    if item.image:
        lines.append(f"  [image: {item.image.filename}]")
    if item.buttons:
        lines.append("  " + "  ".join(f"[{b.label}]" for b in item.buttons))
    return "\n".join(lines)
