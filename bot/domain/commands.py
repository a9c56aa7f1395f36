"""What people ask the core to do: frozen, platform-neutral commands built at the edge.

A form's raw values are turned into one of these (typed, validated) before any handler sees them;
see the capability modules in ``bot/service/handlers`` and ``bot/domain/validation.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.domain.validation import ActionSpec, GoalSpec
from bot.refs import ConversationRef, UserRef


class Audience(StrEnum):
    """Who can read the conversation a request came from, as far as the adapter knows: a neutral
    fact; the rounds capability decides what it allows."""

    OWN = "own"  # the installing organisation only (and platforms with no cross-organisation channels)
    SHARED = "shared"  # shared with another organisation (Slack Connect)
    UNKNOWN = "unknown"  # the adapter could not find out


@dataclass(frozen=True, slots=True)
class Context:
    actor: UserRef
    where: ConversationRef
    # Adapter-private handle for a private reply (a Discord interaction token, a Slack response_url).
    reply_handle: str | None = None
    # The platform's id for this request (event id, interaction id): a retry with the same id is a no-op.
    request_id: str | None = None
    # Whether the adapter's own config names this person a convener (user ids, groups, roles).
    is_convener: bool = False
    audience: Audience = Audience.OWN


@dataclass(frozen=True, slots=True)
class StartRound:
    ctx: Context
    title: str
    purpose: str
    template: str | None = None
    minutes: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LinkRound:
    ctx: Context
    code: str


@dataclass(frozen=True, slots=True)
class JoinRound:
    ctx: Context
    sector: str | None = None
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class Contribute:
    ctx: Context
    text: str
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListMine:
    ctx: Context
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class Withdraw:
    ctx: Context
    round_id: str
    idea_id: str


@dataclass(frozen=True, slots=True)
class CastBallot:
    ctx: Context
    round_id: str
    idea: int
    choice: str  # agree | disagree | pass


@dataclass(frozen=True, slots=True)
class RateIdea:
    ctx: Context
    round_id: str
    idea: int
    urgency: int | None
    impact: int | None


@dataclass(frozen=True, slots=True)
class Advance:
    """Move to the next phase. ``expected`` makes a late or duplicate request a harmless no-op."""

    ctx: Context | None  # None: the deadline scheduler
    round_id: str | None = None
    expected: str | None = None


@dataclass(frozen=True, slots=True)
class CloseRound:
    ctx: Context
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRound:
    """``ctx`` None: nobody asked; the retention pass found the round idle in phase ``expected``."""

    ctx: Context | None
    round_id: str | None = None
    expected: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyRetention:
    """The daily retention pass (``convene run``): purge what is due, cancel idle rounds."""

    ctx: None = None


@dataclass(frozen=True, slots=True)
class AddGoal:
    ctx: Context
    spec: GoalSpec
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class AddAction:
    ctx: Context
    spec: ActionSpec
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class Volunteer:
    ctx: Context
    round_id: str
    action: int


@dataclass(frozen=True, slots=True)
class Status:
    ctx: Context
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class Help:
    ctx: Context
    unknown: str | None = None


class Command(Protocol):
    """Any command: who asks (None for the scheduler) and, where it acts on one, which round."""

    @property
    def ctx(self) -> Context | None: ...
