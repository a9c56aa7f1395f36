"""What people ask the core to do: frozen, platform-neutral commands built at the edge.

A form's raw values are turned into one of these (typed, validated) before any handler sees them;
see the capability modules in ``bot/service/handlers`` and ``bot/domain/validation.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.domain.deck import DeckPlace
from bot.domain.validation import ActionEdit, ActionSpec, GoalSpec, GoalTracking, ProgressReport
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
    """``ctx`` None: nobody asked; the retention pass found the round idle in phase ``expected``."""

    ctx: Context | None
    round_id: str | None = None
    expected: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyRetention:
    """The daily retention pass (``convene run``): purge what is due, cancel idle rounds."""

    ctx: None = None


# --- outages and nudges -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchOutbox:
    """The outbox watch (a recurring timer, no round): channels whose posts keep failing are
    reported to their round's conveners. ``timer_id``: the watch's own timer row, which it re-arms."""

    timer_id: str = ""
    ctx: None = None


@dataclass(frozen=True, slots=True)
class Repost:
    """A convener's "Re-post now" on a stall notice: the conversation's failing posts, due again."""

    ctx: Context
    round_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class Nudge:
    """``/convene nudge``: the same private reminder to everyone who has not finished voting."""

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


# --- follow-up: owned actions followed up until the goal is met -----------------------------------


@dataclass(frozen=True, slots=True)
class ListActions:
    """``mine``: the actions I own, in every round; ``all``: every action of the round here."""

    ctx: Context
    which: str = "mine"
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class EditAction:
    ctx: Context
    action: int
    edit: ActionEdit
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetActionStatus:
    """A one-click status button (in a reminder, or the owner's list)."""

    ctx: Context
    round_id: str
    action: int
    status: str


@dataclass(frozen=True, slots=True)
class ReportProgress:
    """The progress form: a status, a note, a new due date (any of them)."""

    ctx: Context
    action: int
    report: ProgressReport
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetReminders:
    ctx: Context
    on: bool | None  # None: the typed setting was neither on nor off


@dataclass(frozen=True, slots=True)
class SetTimezone:
    ctx: Context
    zone: str
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class EditGoal:
    ctx: Context
    goal: int
    spec: GoalSpec
    tracking: GoalTracking
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckIn:
    ctx: Context
    round_id: str
    goal: int
    value: float
    note: str | None


@dataclass(frozen=True, slots=True)
class DecidePilot:
    ctx: Context
    round_id: str
    goal: int
    decision: str  # continue | scale | stop
    note: str


@dataclass(frozen=True, slots=True)
class StartDelphi:
    ctx: Context
    goal: int | None  # None: what was typed is not a goal number
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    ctx: Context
    round_id: str
    goal: int
    value: float


@dataclass(frozen=True, slots=True)
class NextDelphiRound:
    ctx: Context
    round_id: str
    goal: int


@dataclass(frozen=True, slots=True)
class FixTarget:
    ctx: Context
    round_id: str
    goal: int
    target: float


# Timed follow-up, fired by the scheduler through the bus (no person behind them).


@dataclass(frozen=True, slots=True)
class RemindDueSoon:
    round_id: str
    action_id: str
    ctx: None = None


@dataclass(frozen=True, slots=True)
class RemindDue:
    round_id: str
    action_id: str
    ctx: None = None


@dataclass(frozen=True, slots=True)
class EscalateOverdue:
    round_id: str
    action_id: str
    ctx: None = None


@dataclass(frozen=True, slots=True)
class AskCheckIn:
    round_id: str
    goal_id: str
    ctx: None = None


@dataclass(frozen=True, slots=True)
class AskPilotReview:
    round_id: str
    goal_id: str
    ctx: None = None


@dataclass(frozen=True, slots=True)
class PostProgress:
    round_id: str
    ctx: None = None


class Command(Protocol):
    """Any command: who asks (None for the scheduler) and, where it acts on one, which round."""

    @property
    def ctx(self) -> Context | None: ...


# --- moderation without unmasking -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewIdeas:
    """The private review list: ideas waiting for the conveners (text only)."""

    ctx: Context
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApproveIdea:
    ctx: Context
    round_id: str
    idea_id: str


@dataclass(frozen=True, slots=True)
class RejectIdea:
    ctx: Context
    round_id: str
    idea_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RemoveIdea:
    ctx: Context
    number: int | None  # None: what was typed is not an idea number
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class BlockAuthor:
    """Block the author of a rejected or removed idea (``subject``: what the conveners acted on)."""

    ctx: Context
    round_id: str
    subject: str
