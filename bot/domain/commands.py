"""What people ask the core to do: frozen, platform-neutral commands built at the edge.

A form's raw values are turned into one of these (typed, validated) before any handler sees them;
see the capability modules in ``bot/service/handlers`` and ``bot/domain/validation.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.domain.deck import DeckPlace
from bot.domain.validation import ActionSpec, GoalSpec
from bot.refs import ConversationRef, UserRef


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
    # Cast from the voting deck: where the voter was; the answer is their next card.
    deck: DeckPlace | None = None


@dataclass(frozen=True, slots=True)
class OpenDeck:
    """The "Vote" button on a public post: a private card with the next idea to vote on."""

    ctx: Context
    round_id: str


@dataclass(frozen=True, slots=True)
class MoveInDeck:
    """Skip, Back or Next on a deck card; ``idea`` is the card's idea (None on a card without one)."""

    ctx: Context
    round_id: str
    idea: int | None
    move: str  # skip | back | next
    trail: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RateIdea:
    ctx: Context
    round_id: str
    idea: int
    urgency: int | None
    impact: int | None


@dataclass(frozen=True, slots=True)
class ReleaseBatch:
    """A continuous round's next batch of ideas is due (a timer)."""

    ctx: Context | None
    round_id: str


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
    ctx: Context
    round_id: str | None = None


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
