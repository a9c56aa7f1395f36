"""What adapters ask the core to do: frozen, platform-neutral commands built at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class CancelRound:
    ctx: Context


@dataclass(frozen=True, slots=True)
class AddGoal:
    ctx: Context
    values: dict[str, str]
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class AddAction:
    ctx: Context
    values: dict[str, str]
    round_id: str | None = None


@dataclass(frozen=True, slots=True)
class Volunteer:
    ctx: Context
    round_id: str
    action: int


@dataclass(frozen=True, slots=True)
class Status:
    ctx: Context


@dataclass(frozen=True, slots=True)
class Help:
    ctx: Context
    unknown: str | None = None


Command = (
    StartRound
    | LinkRound
    | JoinRound
    | Contribute
    | ListMine
    | Withdraw
    | CastBallot
    | RateIdea
    | Advance
    | CloseRound
    | CancelRound
    | AddGoal
    | AddAction
    | Volunteer
    | Status
    | Help
)
