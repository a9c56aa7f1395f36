"""Opaque references to things on chat platforms. The core never looks inside the ids."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Platform(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    CONSOLE = "console"


@dataclass(frozen=True, slots=True)
class UserRef:
    platform: Platform
    workspace_id: str  # Slack team id, Discord guild id, console "local"
    user_id: str
    display_name: str = ""  # only ever shown for attributed things (action owners, conveners)

    def key(self) -> str:
        """A stable string for this person, used only as HMAC input and roster lookups."""
        return f"{self.platform}\x1f{self.workspace_id}\x1f{self.user_id}"


@dataclass(frozen=True, slots=True)
class ConversationRef:
    platform: Platform
    workspace_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted message lives, so that later updates become edits."""

    conversation: ConversationRef
    message_id: str
