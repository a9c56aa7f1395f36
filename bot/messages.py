"""Platform-neutral output: what the core asks adapters to show.

The core emits :class:`Message` (prompt keys + JSON data + buttons); the relay renders it with
``prompts/`` into :class:`Rendered` (text blocks + buttons) and an adapter turns that into Block Kit,
discord.py views or terminal text. No platform markup ever appears here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Style = Literal["primary", "danger", "default"]

# Keys that would tie a public message to a person or their affiliation. A public message
# carrying any of them is a bug, refused at construction (Chatham House Rule).
ATTRIBUTION_KEYS = frozenset(
    {"author", "author_key", "user", "user_id", "voter", "voter_key", "platform", "workspace", "sector"}
)


class Visibility(StrEnum):
    PUBLIC = "public"  # posted in a linked conversation
    PRIVATE = "private"  # ephemeral, seen only by the recipient
    DIRECT = "direct"  # a direct message to the recipient


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    action: str  # an encoded bot.ids.ComponentId
    label: str  # a key in prompts/<lang>/labels.yaml under "buttons"
    style: Style = "default"
    params: Mapping[str, Any] | None = None  # fills the label's places: "Make Idea {label} a goal"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action, "label": self.label, "style": self.style}
        if self.params:
            data["params"] = dict(self.params)
        return data


@dataclass(frozen=True, slots=True)
class Part:
    prompt: str  # a PromptKey value: prompts/<lang>/<prompt>.j2
    params: Mapping[str, Any] = field(default_factory=dict)
    buttons: tuple[ButtonSpec, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "params": dict(self.params),
            "buttons": [b.to_json() for b in self.buttons],
        }


@dataclass(frozen=True, slots=True)
class Message:
    parts: tuple[Part, ...]
    # Figures for a chart the relay draws at delivery (numbers only; see bot.consensus.charts).
    chart: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"parts": [p.to_json() for p in self.parts]}
        if self.chart is not None:
            data["chart"] = dict(self.chart)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        return cls(
            tuple(
                Part(
                    p["prompt"],
                    p.get("params", {}),
                    tuple(
                        ButtonSpec(b["action"], b["label"], b.get("style", "default"), b.get("params"))
                        for b in p["buttons"]
                    ),
                )
                for p in data["parts"]
            ),
            data.get("chart"),
        )


@dataclass(frozen=True, slots=True)
class Card:
    """A private card answered through the click itself (the voting deck), never through the outbox:
    the adapter shows it in place of the card that was clicked (``replace``), or as a new private
    message when the click came from a public post. It is rendered for the person and never stored."""

    message: Message
    replace: bool


def find_attribution(value: Any, path: str = "") -> str | None:
    """The path of the first attribution key inside ``value``, or None."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in ATTRIBUTION_KEYS:
                return f"{path}{k}"
            found = find_attribution(v, f"{path}{k}.")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = find_attribution(v, f"{path}{i}.")
            if found:
                return found
    return None


# --- rendered form, handed to adapters --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Button:
    action_id: str
    label: str
    style: Style = "default"


@dataclass(frozen=True, slots=True)
class Block:
    text: str  # neutral markup: **bold**, line breaks, "• " bullets; user values already escaped
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes  # a PNG


@dataclass(frozen=True, slots=True)
class Rendered:
    blocks: tuple[Block, ...]
    image: Attachment | None = None  # shown with the text; the text doubles as its description

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.text)

    @property
    def buttons(self) -> tuple[Button, ...]:
        return tuple(btn for b in self.blocks for btn in b.buttons)
