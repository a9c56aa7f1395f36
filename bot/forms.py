"""Neutral form definitions (Slack modals, Discord modals, console prompts all render these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["text", "long", "select", "number", "date", "bool"]


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    kind: FieldKind = "text"
    required: bool = True
    min_length: int | None = None
    max_length: int | None = None
    options: tuple[Option, ...] = ()
    placeholder: str = ""
    initial: str = ""


@dataclass(frozen=True, slots=True)
class Form:
    form_id: str  # encoded ComponentId: which form, for which round
    title: str  # short: Slack allows 24 characters, Discord 45
    submit: str
    intro: str  # rendered text shown above the fields (charter, purpose, hints)
    fields: tuple[FormField, ...]
